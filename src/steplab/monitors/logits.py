"""``logits``: the largest attention logit and the attention entropy per layer, and the size
of the output logits.

Wortsman et al. 2023 ("Small-scale proxies for large-scale Transformer training
instabilities", arXiv 2309.14322, §3.1) trace loss spikes at high learning rates to
attention logits that grow without bound (fixed by LayerNorm on queries and keys, Dehghani
et al. 2023) and to output logits that drift (the output log-partition ``log Z``; fixed by
the z-loss); Zhai et al. 2023 ("Stabilizing Transformer Training by Preventing Attention
Entropy Collapse", ICML) show that the attention entropy collapsing precedes the
instability. An attention module exposes its pre-softmax, scaled scores by a method
``attention_logits(x) -> Tensor[B, H, T, T]`` (masked positions ``-inf``); this monitor
captures each such module's input on a forward pass over the first probe batch (a forward
pre-hook) and reads:

* ``logits/attn_max/<i>``: ``max`` of the finite scores of the ``i``-th attention module;
* ``logits/attn_entropy/<i>``: ``mean over batch, heads, queries of -sum_j a_j log a_j``
  with ``a = softmax(scores)`` (nats; ``log T`` is uniform attention over ``T`` keys);
* ``logits/output_max``, ``logits/output_rms``: ``max |z|`` and ``sqrt(mean z^2)`` over the
  model's output ``z`` on that batch; ``logits/log_z``: ``mean logsumexp(z)`` over the last
  axis (the quantity the z-loss keeps near 0).

No attention modules and no floating output: the monitor does not apply.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import torch
from torch import nn

from steplab.monitors.base import Monitor, MonitorError, Probe


def attention_modules(model: nn.Module) -> list[nn.Module]:
    """The submodules with an ``attention_logits`` method, in ``named_modules`` order."""
    return [m for _, m in model.named_modules() if callable(getattr(m, "attention_logits", None))]


def attention_stats(scores: torch.Tensor) -> tuple[float, float]:
    """``(max finite score, mean attention entropy in nats)`` of pre-softmax ``scores``
    ``[..., T_query, T_key]`` with masked keys at ``-inf``."""
    scores = scores.double()
    finite = torch.isfinite(scores)
    weights = torch.softmax(scores, dim=-1)
    logs = torch.log_softmax(scores, dim=-1)
    entropy = -(weights * torch.where(weights > 0, logs, torch.zeros_like(logs))).sum(-1)
    return float(scores[finite].max()), float(entropy.mean())


@dataclasses.dataclass
class Logits(Monitor):
    """Attention-logit maxima and entropies per layer, output-logit size; see the module
    docstring."""

    name: ClassVar[str] = "logits"
    #: also the output-logit values
    output: bool = True

    def __call__(self, probe: Probe) -> dict[str, float]:
        if not probe.batches:
            raise MonitorError("logits needs a probe batch")
        modules = attention_modules(probe.model)
        inputs: dict[int, torch.Tensor] = {}
        seen: dict[str, torch.Tensor] = {}

        def keep_input(index: int) -> Any:
            def hook(module: nn.Module, args: tuple[Any, ...]) -> None:
                if args and isinstance(args[0], torch.Tensor):
                    inputs[index] = args[0].detach()

            return hook

        def keep_output(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
            if not isinstance(output, torch.Tensor):  # a Hugging Face ModelOutput carries .logits
                output = getattr(output, "logits", None)
            if isinstance(output, torch.Tensor):
                seen["z"] = output.detach()

        handles = [m.register_forward_pre_hook(keep_input(i)) for i, m in enumerate(modules)]
        handles.append(probe.model.register_forward_hook(keep_output))
        try:
            with torch.no_grad():
                probe.loss(probe.model, probe.batches[0])
        finally:
            for handle in handles:
                handle.remove()
        out: dict[str, float] = {}
        with torch.no_grad():
            for i, module in enumerate(modules):
                if i in inputs:
                    top, entropy = attention_stats(module.attention_logits(inputs[i]))  # type: ignore[operator]
                    out[f"logits/attn_max/{i}"], out[f"logits/attn_entropy/{i}"] = top, entropy
        z = seen.get("z")
        if self.output and z is not None and z.is_floating_point() and z.numel():
            z = z.double()
            out["logits/output_max"] = float(z.abs().max())
            out["logits/output_rms"] = float(z.square().mean().sqrt())
            if z.dim() >= 1 and z.shape[-1] > 1:
                out["logits/log_z"] = float(torch.logsumexp(z, dim=-1).mean())
        return out
