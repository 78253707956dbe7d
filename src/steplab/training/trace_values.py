"""The values a :class:`~steplab.training.recorder.Recorder` computes and converts: global
gradient and update norms (``torch.nn.utils.clip_grad_norm_``'s recipe), metric names with
their split, pending rows as :class:`~steplab.results.StepRow` s, and the spec of a user's
own run.

The per-step norms (:class:`StepNorms`) take a few whole-model kernels a step: on the CPU one
flat copy of the gradients and of the parameters; on an accelerator one
``torch._foreach_norm`` per order over the gradients, one ``_foreach_copy_`` before the step
and one ``_foreach_sub_`` + ``_foreach_norm`` after it for the update ``theta_old - theta_new``,
each step keeping only its per-tensor norms (:class:`PartialNorm`, device tensors). Pending
norms are reduced at flush in one ``stack`` (and one ``vector_norm(dim=1)`` per order for
partial norms) and copied to the host with the other values, once per device
(:func:`materialize`). Nothing synchronizes per step.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch._utils import _flatten_dense_tensors

from steplab.results import StepRow, TrialSpec

#: gradient dtypes whose norms ``_foreach_norm(..., dtype=torch.float32)`` takes
_FUSED_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def jsonable(value: Any) -> Any:
    """``value`` with everything JSON cannot hold turned into its ``str`` (configs are user
    data: a ``Path`` or a dtype in a config should not stop the run)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    return str(value)


def split_of(metric: str) -> tuple[str, str]:
    """``("validation", "validation/loss")`` for ``"validation/loss"`` or ``"loss"``."""
    if "/" in metric:
        return metric.split("/", 1)[0], metric
    return "validation", f"validation/{metric}"


def global_norm(tensors: list[torch.Tensor], ord: float) -> torch.Tensor:
    """The ``ord``-norm of all ``tensors`` flattened together, as a float32 0-d tensor on the
    first tensor's device (``torch.nn.utils.clip_grad_norm_``'s recipe)."""
    device = tensors[0].device
    dense = [t for t in tensors if not t.is_sparse]
    norms: list[torch.Tensor] = []
    if dense:
        groups: dict[tuple[torch.device, bool], list[torch.Tensor]] = {}
        for t in dense:
            groups.setdefault((t.device, t.dtype in _FUSED_DTYPES), []).append(t)
        for (_, narrow), group in groups.items():  # float64 in its own precision, then float32
            kwargs = {"dtype": torch.float32} if narrow else {}
            norms.extend(n.to(device, torch.float32) for n in torch._foreach_norm(group, ord, **kwargs))
    for t in tensors:
        if t.is_sparse:
            values = t.coalesce().values().to(torch.float32)
            norms.append(torch.linalg.vector_norm(values, ord).to(device))
    return torch.linalg.vector_norm(torch.stack(norms), ord)


class PartialNorm:
    """The per-tensor ``ord``-norms of one step (``n_1, ..., n_k``: 0-d float32 device tensors,
    as ``torch._foreach_norm`` returns them), reduced to the global norm
    ``||(n_1, ..., n_k)||_ord`` by :func:`materialize` (one stack for all pending steps, not
    one per step)."""

    __slots__ = ("norms", "ord")

    def __init__(self, norms: list[torch.Tensor] | tuple[torch.Tensor, ...], ord: float) -> None:
        self.norms = norms
        self.ord = ord

    def value(self) -> torch.Tensor:
        """The global norm, a 0-d device tensor."""
        return torch.linalg.vector_norm(torch.stack(list(self.norms)), self.ord)


class StepNorms:
    """The per-step norms of a recorder: the gradients' l2 and l1 norms before the optimizer
    step (:meth:`before`) and the update's l2 norm after it (:meth:`after`), over the
    parameters that have a gradient. Three paths:

    * **flat** (dense tensors of one dtype on the CPU): one flat copy of the gradients
      (``torch._utils._flatten_dense_tensors``, one C++ call) and ``vector_norm`` /
      ``abs().sum()`` on it; the parameters are copied flat into one buffer before the step
      and subtracted from it after. On the CPU torch's ``_foreach`` ops run one kernel per
      tensor and its l1 norm kernel is slow, so this takes about a quarter less time in the
      loop (charlm 312 against 410 microseconds a step, mnist1d:mlp 68 against 95; the
      recorder's time off the clock, least of 7 runs);
    * **fused** (dense tensors on one device, e.g. CUDA): one ``torch._foreach_norm`` per
      order (one multi-tensor kernel there), reduced at flush (:class:`PartialNorm`), and
      per-parameter buffers for the update;
    * anything else (sparse gradients, several devices, float64 next to float32):
      :func:`global_norm`."""

    #: take the flat path where it applies (False: the per-tensor kernels everywhere)
    flat_on_cpu = True

    def __init__(self, l2: bool, l1: bool, update: bool) -> None:
        self.l2, self.l1, self.update = l2, l1, update
        self._key: tuple[int, ...] = ()
        self._fused = True
        self._flat = False
        self._buffers: list[torch.Tensor] = []
        self._snapshot: list[torch.Tensor] = []

    def _refresh(self, params: list[torch.Tensor], key: tuple[int, ...]) -> None:
        grads: list[torch.Tensor] = [p.grad for p in params]  # type: ignore[misc]
        devices = {p.device for p in params}
        self._fused = len(devices) == 1 and all(not g.is_sparse and g.dtype in _FUSED_DTYPES for g in grads)
        tensors = (*params, *grads)
        self._flat = (self.flat_on_cpu and self._fused and devices == {torch.device("cpu")}
                      and len({t.dtype for t in tensors}) == 1 and all(t.layout == torch.strided for t in tensors))
        if not self.update:
            self._buffers = []
        elif self._flat:
            self._buffers = [torch.empty(sum(p.numel() for p in params), dtype=params[0].dtype)]
        else:
            self._buffers = [torch.empty_like(p, memory_format=torch.preserve_format) for p in params]
        self._key = key

    def _snapshot_params(self, params: list[torch.Tensor]) -> None:
        if self._flat:
            self._buffers[0].copy_(_flatten_dense_tensors(params))
        else:
            torch._foreach_copy_(self._buffers, params)

    def before(self, param_groups: list[dict[str, Any]]) -> tuple[Any, Any]:
        """Gradient norms (l2, l1; ``None`` when not asked or no gradient) of the step about
        to be taken; snapshots the parameters for :meth:`after`."""
        params = [p for g in param_groups for p in g["params"] if p.grad is not None]
        self._snapshot = []
        if not params:
            return None, None
        key = tuple(map(id, params))
        if key != self._key:
            self._refresh(params, key)
        grads: list[torch.Tensor] = [p.grad for p in params]  # type: ignore[misc]
        gn = gn1 = None
        grad_mode = torch.is_grad_enabled()
        torch._C._set_grad_enabled(False)  # cheaper than a no_grad() context, twice a step
        try:
            if self._flat and (self.l2 or self.l1):
                flat = _flatten_dense_tensors(grads)
                gn = torch.linalg.vector_norm(flat, dtype=torch.float32) if self.l2 else None
                gn1 = flat.abs().sum(dtype=torch.float32) if self.l1 else None
            elif self._fused:
                if self.l2:
                    gn = PartialNorm(torch._foreach_norm(grads, 2.0, dtype=torch.float32), 2.0)
                if self.l1:
                    gn1 = PartialNorm(torch._foreach_norm(grads, 1.0, dtype=torch.float32), 1.0)
            else:
                gn = global_norm(grads, 2.0) if self.l2 else None
                gn1 = global_norm(grads, 1.0) if self.l1 else None
            if self.update:
                try:
                    self._snapshot_params(params)
                except RuntimeError:  # a parameter changed shape, dtype or device in place
                    self._refresh(params, key)
                    self._snapshot_params(params)
                self._snapshot = params
        finally:
            torch._C._set_grad_enabled(grad_mode)
        return gn, gn1

    def after(self) -> Any:
        """``||theta_old - theta_new||_2`` of the step just taken, or ``None`` without a
        snapshot."""
        params, self._snapshot = self._snapshot, []
        if not params:
            return None
        grad_mode = torch.is_grad_enabled()
        torch._C._set_grad_enabled(False)
        try:
            if self._flat:
                old = self._buffers[0]
                old.sub_(_flatten_dense_tensors(params))  # old - new, in place
                return torch.linalg.vector_norm(old, dtype=torch.float32)
            torch._foreach_sub_(self._buffers, params)  # old - new, in place
            if self._fused:
                return PartialNorm(torch._foreach_norm(self._buffers, 2.0, dtype=torch.float32), 2.0)
            return global_norm(self._buffers, 2.0)
        finally:
            torch._C._set_grad_enabled(grad_mode)

    def clear(self) -> None:
        """Drop the buffers (the recorder is closed)."""
        self._buffers, self._snapshot, self._key = [], [], ()


def materialize(pending: list[list[Any]]) -> list[StepRow]:
    """Pending rows ``[step, time_s, lr, loss, grad_norm, grad_norm_l1, update_norm]`` as
    :class:`StepRow` s (NaN as ``None``): per column, the :class:`PartialNorm` s reduced to
    global norms in one ``vector_norm(dim=1)`` per device, order and parameter count and the
    0-d tensors stacked; then one copy to the host per device."""
    if not pending:
        return []
    columns = [list(c) for c in zip(*pending, strict=True)]
    chunks: dict[torch.device, list[torch.Tensor]] = {}
    slots: dict[torch.device, list[tuple[list[Any], list[int]]]] = {}
    for col in columns[2:]:
        groups: dict[tuple[Any, ...], tuple[list[int], list[torch.Tensor]]] = {}
        for i, v in enumerate(col):
            if v is None or v.__class__ is float:
                continue
            if v.__class__ is PartialNorm:
                key: tuple[Any, ...] = (v.norms[0].device, v.ord, len(v.norms))
                idx, ts = groups.get(key) or groups.setdefault(key, ([], []))
                idx.append(i)
                ts.extend(v.norms)
            elif isinstance(v, torch.Tensor):
                key = (v.device,)
                idx, ts = groups.get(key) or groups.setdefault(key, ([], []))
                idx.append(i)
                ts.append(v)
            else:
                col[i] = float(v)
        for key, (idx, ts) in groups.items():
            stacked = torch.stack(ts)
            value = (stacked.to(torch.float32) if len(key) == 1
                     else torch.linalg.vector_norm(stacked.view(len(idx), key[2]), key[1], dim=1))
            chunks.setdefault(key[0], []).append(value)
            slots.setdefault(key[0], []).append((col, idx))
    for device, parts in chunks.items():
        values = (parts[0] if len(parts) == 1 else torch.cat(parts)).cpu().tolist()
        k = 0
        for col, idx in slots[device]:
            for i in idx:
                col[i] = values[k]
                k += 1
    steps, times, *rest = columns
    clean = [[None if v is None or v != v else float(v) for v in c] for c in rest]  # NaN -> None
    return [StepRow(int(s), float(t), *vals) for s, t, *vals in zip(steps, times, *clean, strict=True)]


def user_trial_spec(optimizer: torch.optim.Optimizer, config: Mapping[str, Any] | None) -> TrialSpec:
    """The spec of a user's own run recorded with ``Recorder(db=...)``: workload ``user``,
    algorithm = the optimizer's class, hyperparameters = ``config`` (``config["seed"]`` and
    ``config["budget_steps"]`` fill the spec when present)."""
    cfg = jsonable(dict(config or {}))
    return TrialSpec(
        workload="user",
        variant="base",
        algorithm=type(optimizer).__name__,
        algorithm_spec={
            "optimizer": f"{type(optimizer).__module__}.{type(optimizer).__qualname__}",
            "defaults": jsonable(getattr(optimizer, "defaults", {})),
        },
        hyperparameters=cfg,
        seed=int(cfg.get("seed", 0)) if isinstance(cfg.get("seed"), int) else 0,
        budget_steps=int(cfg["budget_steps"]) if isinstance(cfg.get("budget_steps"), int) else 0,
        stop_at_target=False,
    )
