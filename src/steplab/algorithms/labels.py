"""Run labels that tell runs apart (issue 27): ``adamw-cosine lr=0.001 wd=0`` says what a
run changed from the algorithm it names, where the bare name ``adamw-cosine`` would make a
plain ``steplab run`` (lr 1e-3, no weight decay) look like the built-in (lr 3e-3, weight
decay 0.05).

* :func:`config_diff` - the settings of a stored run that differ from the built-in
  algorithm of the same name (``lr``, ``wd``, schedule keys, optimizer kwargs, ...);
* :func:`run_label` - the label the lists and reports show: the run's own name when it
  has one (``steplab run --name``, ``Recorder(name=...)``, an import's ``--name``), else
  the algorithm's name followed by :func:`config_diff`.

An algorithm that is not a built-in (a user's TOML file named ``mine``, a Recorder run's
optimizer class) has no defaults to differ from: its label is its name and its peak lr.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from steplab.results import TrialSpec

__all__ = ["config_diff", "format_value", "run_label"]

#: short names of the algorithm fields in a label (the others keep their field name)
_SHORT = {"weight_decay": "wd"}
_FIELDS = ("lr", "weight_decay", "batch_size", "label_smoothing", "grad_clip")


def format_value(v: Any) -> str:
    """A setting in a label: floats to 4 significant digits, booleans in TOML spelling,
    sequences comma-joined.

    >>> format_value(0.001), format_value(0.0), format_value(True), format_value([0.9, 0.95])
    ('0.001', '0', 'true', '0.9,0.95')
    """
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:.4g}" if math.isfinite(v) else str(v)
    if isinstance(v, list | tuple):
        return ",".join(format_value(x) for x in v)
    return str(v)


def _base_name(algorithm: str) -> str:
    """The built-in an algorithm name derives from: ``adamw-cosine+autolrs`` and
    ``adamw-cosine tradeoff:cyclic`` come from ``adamw-cosine``."""
    return algorithm.split("+", 1)[0].split(" ", 1)[0]


def _effective_kwargs(optimizer: str, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The optimizer kwargs with the registry's defaults filled in (a registry name only;
    a ``module:Class`` optimizer is compared as stored)."""
    from steplab.optim import registry as optimizers  # torch-free

    if optimizer not in optimizers.optimizer_names():
        return dict(kwargs)
    return {**optimizers.default_kwargs(optimizer), **kwargs}


def _kwarg_diff(key: str, mine: Any, theirs: Any) -> dict[str, Any]:
    if key == "betas" and isinstance(mine, list | tuple) and isinstance(theirs, list | tuple):
        return {f"beta{i + 1}": m for i, (m, t) in enumerate(zip(mine, theirs)) if m != t}
    return {key: mine}


def config_diff(spec: TrialSpec) -> dict[str, Any]:
    """The settings of the run ``spec`` that differ from the built-in algorithm of the same
    name, in a stable order: ``optimizer``, ``lr``, ``wd``, batch size, label smoothing,
    gradient clipping, then the schedule (``schedule=wsd:...`` when the schedule itself
    differs, else its keys such as ``warmup``), the optimizer kwargs (``beta2``,
    ``eps``...) and a data schedule that is not uniform (``curriculum=easy-to-hard``). For an algorithm that is not a built-in: its peak ``lr`` when known."""
    from steplab import schedules
    from steplab.algorithms.baselines import builtins
    from steplab.errors import SteplabError

    mine = spec.algorithm_spec or {}
    ref = builtins().get(_base_name(spec.algorithm or ""))
    if ref is None or "lr" not in mine:
        lr = mine.get("lr", spec.hyperparameters.get("lr"))
        own = {"lr": lr} if isinstance(lr, int | float) and not isinstance(lr, bool) else {}
        if isinstance(mine.get("curriculum"), Mapping):
            own["curriculum"] = _curriculum_text(mine["curriculum"])
        return own
    theirs = ref.resolved().to_dict()
    out: dict[str, Any] = {}
    if mine.get("optimizer", theirs["optimizer"]) != theirs["optimizer"]:
        out["optimizer"] = mine["optimizer"]
    for field in _FIELDS:
        if field in mine and mine[field] != theirs[field]:
            out[_SHORT.get(field, field)] = mine[field]
    try:
        s_mine = schedules.spec_from(mine.get("schedule", theirs["schedule"]))
        s_theirs = schedules.spec_from(theirs["schedule"])
    except SteplabError:  # a schedule this steplab no longer knows: show it as stored
        s_mine = s_theirs = None
        if mine.get("schedule") != theirs["schedule"]:
            out["schedule"] = mine.get("schedule")
    if s_mine is not None and s_theirs is not None:
        if s_mine.name != s_theirs.name:
            out["schedule"] = str(s_mine)
        else:
            a, b = s_mine.resolved(), s_theirs.resolved()
            out.update({k: v for k, v in a.items() if b.get(k) != v})
    try:
        k_mine = _effective_kwargs(mine.get("optimizer", theirs["optimizer"]), mine.get("optimizer_kwargs", {}))
        k_theirs = _effective_kwargs(theirs["optimizer"], theirs["optimizer_kwargs"])
    except SteplabError:  # an optimizer class that no longer imports: compare as stored
        k_mine, k_theirs = dict(mine.get("optimizer_kwargs", {})), dict(theirs["optimizer_kwargs"])
    for k, v in k_mine.items():
        if k_theirs.get(k) != v:
            out.update(_kwarg_diff(k, v, k_theirs.get(k)))
    if isinstance(mine.get("curriculum"), Mapping):  # stored only when not uniform
        out["curriculum"] = _curriculum_text(mine["curriculum"])
    return out


def _curriculum_text(table: Mapping[str, Any]) -> str:
    """The data schedule in a label (``easy-to-hard:pacing=root``), as stored when this
    steplab no longer knows it."""
    from steplab.algorithms import curriculum
    from steplab.errors import SteplabError

    try:
        return curriculum.key(table)
    except SteplabError:
        return ",".join(f"{k}={v}" for k, v in table.items())


def run_label(spec: TrialSpec, name: str | None = None) -> str:
    """The label of a run in lists and reports: ``name`` when the run has one (the
    Recorder's or ``--name``), else the algorithm's name and the settings that differ from
    its built-in (:func:`config_diff`).

    >>> from steplab.results import TrialSpec
    >>> spec = TrialSpec("logreg", "base", "mine", {"name": "mine", "lr": 0.002}, {}, 0, 100)
    >>> run_label(spec), run_label(spec, "my-run")
    ('mine lr=0.002', 'my-run')
    """
    if name:
        return name
    diff = config_diff(spec)
    return " ".join([spec.algorithm or "unknown", *(f"{k}={format_value(v)}" for k, v in diff.items())])
