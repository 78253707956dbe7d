"""The values a :class:`~steplab.training.recorder.Recorder` computes and converts: global
gradient and update norms (``torch.nn.utils.clip_grad_norm_``'s recipe), metric names with
their split, pending rows as :class:`~steplab.results.StepRow` s, and the spec of a user's
own run."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from steplab.results import StepRow, TrialSpec


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
        by_device: dict[torch.device, list[torch.Tensor]] = {}
        for t in dense:
            by_device.setdefault(t.device, []).append(t)
        for group in by_device.values():
            norms.extend(n.to(device) for n in torch._foreach_norm(group, ord, dtype=torch.float32))
    for t in tensors:
        if t.is_sparse:
            values = t.coalesce().values().to(torch.float32)
            norms.append(torch.linalg.vector_norm(values, ord).to(device))
    return torch.linalg.vector_norm(torch.stack(norms), ord)


def materialize(pending: list[list[Any]]) -> list[StepRow]:
    """Pending rows ``[step, time_s, lr, loss, grad_norm, grad_norm_l1, update_norm]`` as
    :class:`StepRow` s, with the tensors among them copied to the host once per device."""
    by_device: dict[torch.device, list[tuple[int, int]]] = {}
    tensors: dict[torch.device, list[torch.Tensor]] = {}
    for i, row in enumerate(pending):
        for j in range(2, len(row)):
            value = row[j]
            if isinstance(value, torch.Tensor):
                by_device.setdefault(value.device, []).append((i, j))
                tensors.setdefault(value.device, []).append(value.to(torch.float32))
    for device, where in by_device.items():
        values = torch.stack(tensors[device]).cpu().tolist()
        for (i, j), v in zip(where, values, strict=True):
            pending[i][j] = v
    out = []
    for row in pending:
        clean = [None if v is None else float(v) for v in row[2:]]
        clean = [None if v is not None and math.isnan(v) else v for v in clean]
        out.append(StepRow(int(row[0]), float(row[1]), *clean))
    return out


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
