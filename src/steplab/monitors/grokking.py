"""``grokking``: on modular arithmetic, the Fourier sparsity of the learned representation
and the grokking delay.

Networks that grok ``a + b mod p`` represent tokens by a few Fourier modes ``cos(2 pi k a /
p)`` (Nanda et al. 2023, "Progress measures for grokking via mechanistic
interpretability", ICLR; Gromov 2023). Doshi, Das, He & Gromov 2023 ("To grok or not to
grok", arXiv 2310.13061, eq. 3-4) measure it by the inverse participation ratio of the
discrete Fourier transform of each weight vector over the ``p`` tokens,

    IPR_r(x) = sum_k (|x^_k| / |x^|_2)^(2r),  r = 2,

with ``x^`` the *real* DFT (``numpy.fft.rfft``, ``floor(p/2) + 1`` coefficients, as the
authors' code): a pure cosine scores 1, a one-hot vector ``1/(floor(p/2)+1)`` (1/49 for
``p = 97``), i.i.d. Gaussian noise ~0.04 (with the full DFT these would be 0.5, 1/p, 0.02).
Reported, for models with a token embedding (modarith's ``EmbedMLP``):

* ``grokking/ipr``: mean IPR over the embedding dimensions (each column of the ``p x d``
  embedding, over the tokens);
* ``grokking/ipr_neurons`` (``EmbedMLP``): Doshi et al.'s per-neuron score, the mean over
  hidden neurons ``n`` of the mean IPR of ``U[:, n]``, ``V[:, n]`` and ``W[:, n]``, where
  ``U = E W_a^T`` and ``V = E W_b^T`` are the neuron's input weights as a function of the
  first and second token (``E`` the embedding, ``W_a``/``W_b`` the halves of the hidden
  layer) and ``W`` the read-out;
* with a modarith workload: ``grokking/train_accuracy`` (on the labels trained on, corrupted
  or not), ``grokking/val_accuracy``, and once crossed the first measured steps at which
  each reached ``threshold`` (0.99): ``grokking/fit_step``, ``grokking/generalize_step``, and
  the grokking delay ``grokking/delay = generalize_step - fit_step`` (at the measurement
  cadence; Power et al. 2022). With corrupted labels also ``grokking/corrupt_true_accuracy``:
  on the training pairs whose label was changed, the share predicted with the *true* label
  (Doshi et al.'s "inversion": high means the corrupted labels were not memorised).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch
from torch import nn

from steplab.monitors.base import Monitor, MonitorError, Probe
from steplab.workloads.modarith import EMBED, EmbedMLP, ModArith


def fourier_ipr(weights: torch.Tensor, dim: int = 0, r: int = 2) -> torch.Tensor:
    """``IPR_r`` of every vector of ``weights`` along ``dim`` (real DFT; module docstring);
    a zero vector scores 0."""
    spectrum = torch.fft.rfft(weights.double(), dim=dim).abs()
    norm = spectrum.norm(dim=dim, keepdim=True)
    share = spectrum / torch.where(norm > 0, norm, torch.ones_like(norm))
    return share.pow(2 * r).sum(dim=dim)


def token_embedding(model: nn.Module) -> nn.Embedding | None:
    """The model's first ``nn.Embedding``."""
    return next((m for m in model.modules() if isinstance(m, nn.Embedding)), None)


@dataclasses.dataclass
class Grokking(Monitor):
    """Fourier IPR and the grokking delay on modarith; see the module docstring."""

    name: ClassVar[str] = "grokking"
    #: accuracy that counts as fitted (train) / generalised (validation)
    threshold: float = 0.99
    _fit_step: int | None = dataclasses.field(default=None, init=False, repr=False)
    _generalize_step: int | None = dataclasses.field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if not 0 < self.threshold <= 1:
            raise ValueError(f"threshold must be in (0, 1], got {self.threshold}")

    def __call__(self, probe: Probe) -> dict[str, float]:
        workload = probe.workload if isinstance(probe.workload, ModArith) else None
        model = probe.model
        embedding = token_embedding(model)
        if workload is None and not isinstance(model, EmbedMLP):
            raise MonitorError("grokking applies to modular arithmetic (the modarith workload or its EmbedMLP)")
        if embedding is None:
            raise MonitorError("grokking needs a token embedding (an nn.Embedding) in the model")
        out: dict[str, float] = {}
        with torch.no_grad():
            table = embedding.weight.detach()
            out["grokking/ipr"] = float(fourier_ipr(table, dim=0).mean())
            if isinstance(model, EmbedMLP):
                hidden = model.hidden.weight.detach()
                u, v = table @ hidden[:, :EMBED].T, table @ hidden[:, EMBED:].T
                w = model.out.weight.detach()
                per_neuron = (fourier_ipr(u) + fourier_ipr(v) + fourier_ipr(w)) / 3
                out["grokking/ipr_neurons"] = float(per_neuron.mean())
            if workload is not None:
                out.update(self._accuracies(model, workload, probe))
        return out

    def _accuracies(self, model: nn.Module, workload: ModArith, probe: Probe) -> dict[str, float]:
        x_train, y_train = workload.train_set(probe.device)
        x_val, y_val = workload.validation_set(probe.device)
        pred_train = model(x_train).argmax(-1)
        train = float((pred_train == y_train).double().mean())
        val = float((model(x_val).argmax(-1) == y_val).double().mean())
        out = {"grokking/train_accuracy": train, "grokking/val_accuracy": val}
        true = (x_train[:, 0] + x_train[:, 1]) % workload.modulus
        changed = y_train != true
        if bool(changed.any()):
            out["grokking/corrupt_true_accuracy"] = float((pred_train[changed] == true[changed]).double().mean())
        if self._fit_step is None and train >= self.threshold:
            self._fit_step = probe.step
        if self._generalize_step is None and val >= self.threshold:
            self._generalize_step = probe.step
        if self._fit_step is not None:
            out["grokking/fit_step"] = float(self._fit_step)
        if self._generalize_step is not None:
            out["grokking/generalize_step"] = float(self._generalize_step)
        if self._fit_step is not None and self._generalize_step is not None:
            out["grokking/delay"] = float(self._generalize_step - self._fit_step)
        return out
