"""The values a :class:`~steplab.training.recorder.Recorder` computes and converts: global
gradient and update norms (``torch.nn.utils.clip_grad_norm_``'s recipe), metric names with
their split, pending rows as :class:`~steplab.results.StepRow` s, and the spec of a user's
own run.

The per-step norms (:class:`StepNorms`) allocate nothing per step on the CPU: the gradients and
the parameters are copied into a preallocated ring of flat rows (one ``torch._foreach_copy_``
before the step, one after it), reduced a ring at a time (:meth:`StepNorms.settle`, at flush or
when the ring is full) into :class:`Deferred` values. On an accelerator: one
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

from steplab.results import StepRow, TrialSpec

#: gradient dtypes whose norms ``_foreach_norm(..., dtype=torch.float32)`` takes
_FUSED_DTYPES = (torch.float32, torch.bfloat16, torch.float16)

#: the most memory the CPU ring of :class:`StepNorms` takes (at most ``RING_ROWS`` steps, at
#: least one) before it is reduced
RING_BYTES = 16 * 2**20
RING_ROWS = 256


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


class Deferred:
    """A norm of the CPU ring of :class:`StepNorms`, known (``value``, a float) once
    :meth:`StepNorms.settle` has reduced the ring; ``None`` until then, or for ever for an
    update norm whose step did not finish."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: float | None = None


class StepNorms:
    """The per-step norms of a recorder: the gradients' l2 and l1 norms before the optimizer
    step (:meth:`before`) and the update's l2 norm after it (:meth:`after`), over the
    parameters that have a gradient. Three paths:

    * **ring** (dense tensors of one dtype on the CPU): the gradients and the parameters are
      copied before the step, and the parameters again after it, into the next row of a
      preallocated ring (``[gradients | parameters before | parameters after]``, flat), one
      ``torch._foreach_copy_`` into views made once; :meth:`settle` reduces the filled rows
      in three batched kernels (``vector_norm(dim=1)``, ``abs().sum(dim=1)``, and the norm of
      the difference) and hands the values to the :class:`Deferred` s the hooks returned. Work
      between two updates slows the next update even when its own time is excluded, and on
      the CPU allocation does so most (the allocator hands the step's temporaries colder
      memory): off a bare loop's clock, these norms cost a logreg step 1.05x against 1.10x
      for the same norms from fresh flat copies (``benchmarks/between_steps.py``);
    * **fused** (dense tensors on one device, e.g. CUDA): one ``torch._foreach_norm`` per
      order (one multi-tensor kernel there), reduced at flush (:class:`PartialNorm`), and
      per-parameter buffers for the update;
    * anything else (sparse gradients, several devices, float64 next to float32):
      :func:`global_norm`."""

    #: take the ring path where it applies (False: the per-tensor kernels everywhere)
    flat_on_cpu = True

    def __init__(self, l2: bool, l1: bool, update: bool) -> None:
        self.l2, self.l1, self.update = l2, l1, update
        self._key: tuple[Any, ...] = ()
        self._fused = True
        self._flat = False
        self._buffers: list[torch.Tensor] = []
        self._snapshot: list[torch.Tensor] = []
        # the ring: rows of [gradients | parameters before | parameters after], each row's
        # views (what one copy before the step fills, what one copy after it fills)
        self._ring = torch.empty(0)
        self._slots: list[tuple[list[torch.Tensor], list[torch.Tensor]]] = []
        self._numel = 0
        self._used = 0
        self._marks: list[tuple[Deferred | None, Deferred | None, Deferred | None]] = []
        self._finished: list[bool] = []

    def _refresh(self, params: list[torch.Tensor], key: tuple[Any, ...]) -> None:
        self.settle()
        grads: list[torch.Tensor] = [p.grad for p in params]  # type: ignore[misc]
        devices = {p.device for p in params}
        self._fused = len(devices) == 1 and all(not g.is_sparse and g.dtype in _FUSED_DTYPES for g in grads)
        tensors = (*params, *grads)
        self._flat = (self.flat_on_cpu and self._fused and devices == {torch.device("cpu")}
                      and len({t.dtype for t in tensors}) == 1 and all(t.layout == torch.strided for t in tensors))
        self._buffers, self._slots, self._ring = [], [], torch.empty(0)
        if self._flat:
            self._make_ring(params)
        elif self.update:
            self._buffers = [torch.empty_like(p, memory_format=torch.preserve_format) for p in params]
        self._key = key

    def _make_ring(self, params: list[torch.Tensor]) -> None:
        n = self._numel = sum(p.numel() for p in params)
        parts = (1 if self.l2 or self.l1 else 0) + (2 if self.update else 0)
        width = parts * n
        rows = max(1, min(RING_ROWS, RING_BYTES // max(1, width * params[0].element_size())))
        self._ring = torch.empty(rows, width, dtype=params[0].dtype)

        def views(row: torch.Tensor, shapes: list[torch.Size]) -> list[torch.Tensor]:
            out, offset = [], 0
            for shape in shapes:
                size = shape.numel()
                out.append(row[offset:offset + size].view(shape))
                offset += size
            return out

        shapes = [p.shape for p in params]
        for row in self._ring:
            before = views(row, shapes) if self.l2 or self.l1 else []
            after: list[torch.Tensor] = []
            if self.update:
                start = n if self.l2 or self.l1 else 0
                before += views(row[start:start + n], shapes)
                after = views(row[start + n:], shapes)
            self._slots.append((before, after))

    def before(self, param_groups: list[dict[str, Any]]) -> tuple[Any, Any]:
        """Gradient norms (l2, l1; ``None`` when not asked or no gradient) of the step about
        to be taken; snapshots the parameters for :meth:`after`."""
        params = [p for g in param_groups for p in g["params"] if p.grad is not None]
        self._snapshot = []
        if not params:
            return None, None
        key = (*map(id, params), *(p.shape for p in params))
        if key != self._key:
            self._refresh(params, key)
        grads: list[torch.Tensor] = [p.grad for p in params]  # type: ignore[misc]
        grad_mode = torch.is_grad_enabled()
        torch._C._set_grad_enabled(False)  # cheaper than a no_grad() context, twice a step
        try:
            if self._flat:
                return self._keep(params, grads, key)
            gn = gn1 = None
            if self._fused:
                if self.l2:
                    gn = PartialNorm(torch._foreach_norm(grads, 2.0, dtype=torch.float32), 2.0)
                if self.l1:
                    gn1 = PartialNorm(torch._foreach_norm(grads, 1.0, dtype=torch.float32), 1.0)
            else:
                gn = global_norm(grads, 2.0) if self.l2 else None
                gn1 = global_norm(grads, 1.0) if self.l1 else None
            if self.update:
                try:
                    torch._foreach_copy_(self._buffers, params)
                except RuntimeError:  # a parameter changed dtype or device in place
                    self._refresh(params, key)
                    torch._foreach_copy_(self._buffers, params)
                self._snapshot = params
            return gn, gn1
        finally:
            torch._C._set_grad_enabled(grad_mode)

    def _keep(self, params: list[torch.Tensor], grads: list[torch.Tensor], key: tuple[Any, ...]) -> tuple[Any, Any]:
        """The ring path of :meth:`before`: copy into the next row."""
        if self._used == len(self._slots):
            self.settle()
        sources = grads if self.l2 or self.l1 else []
        if self.update:
            sources = [*sources, *params]
        try:
            torch._foreach_copy_(self._slots[self._used][0], sources)
        except RuntimeError:  # a parameter changed dtype or device in place
            self._refresh(params, key)
            if not self._flat:
                return self.before([{"params": params}])
            torch._foreach_copy_(self._slots[self._used][0], sources)
        marks = (Deferred() if self.l2 else None, Deferred() if self.l1 else None,
                 Deferred() if self.update else None)
        self._marks.append(marks)
        self._finished.append(False)
        self._used += 1
        if self.update:
            self._snapshot = params
        return marks[0], marks[1]

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
                if not self._used:  # settled in between: nothing to pair with
                    return None
                row = self._used - 1
                torch._foreach_copy_(self._slots[row][1], params)
                self._finished[row] = True
                return self._marks[row][2]
            torch._foreach_sub_(self._buffers, params)  # old - new, in place
            if self._fused:
                return PartialNorm(torch._foreach_norm(self._buffers, 2.0, dtype=torch.float32), 2.0)
            return global_norm(self._buffers, 2.0)
        finally:
            torch._C._set_grad_enabled(grad_mode)

    def settle(self) -> None:
        """Reduce the ring's filled rows: every :class:`Deferred` handed out so far gets its
        value (an update norm only where its step finished)."""
        used, self._used = self._used, 0
        marks, finished, self._marks, self._finished = self._marks, self._finished, [], []
        # Ctrl-C between two statements of _keep can leave the three out of step: the rows
        # all three count are the ones to reduce (the recorder closes after an interrupt)
        used = min(used, len(marks), len(finished))
        if not used:
            return
        grad_mode = torch.is_grad_enabled()
        torch._C._set_grad_enabled(False)
        try:
            rows, n = self._ring[:used], self._numel
            columns: list[list[float] | None] = [None, None, None]
            start = 0
            if self.l2 or self.l1:
                grads, start = rows[:, :n], n
                if self.l2:
                    columns[0] = torch.linalg.vector_norm(grads, dim=1, dtype=torch.float32).tolist()
                if self.l1:
                    columns[1] = grads.abs().sum(dim=1, dtype=torch.float32).tolist()
            if self.update:
                change = rows[:, start:start + n] - rows[:, start + n:]  # old - new
                columns[2] = torch.linalg.vector_norm(change, dim=1, dtype=torch.float32).tolist()
        finally:
            torch._C._set_grad_enabled(grad_mode)
        for i, row_marks in enumerate(marks[:used]):
            for j, mark in enumerate(row_marks):
                if mark is not None and (j < 2 or finished[i]):
                    mark.value = columns[j][i]  # type: ignore[index]

    def clear(self) -> None:
        """Settle, then drop the buffers (the recorder is closed)."""
        self.settle()
        self._buffers, self._snapshot, self._key = [], [], ()
        self._slots, self._ring = [], torch.empty(0)


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
            if v.__class__ is Deferred:
                col[i] = v.value
            elif v.__class__ is PartialNorm:
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
