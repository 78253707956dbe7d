"""Hyperparameter keys: the one parser of the names a search space, a hyperparameter point
(:meth:`~steplab.algorithms.Algorithm.with_hyperparameters`), :meth:`Algorithm.defaults`
and ``--set`` overrides use.

==========================  =====================================================
``lr``                      peak learning rate (AlgoPerf ``learning_rate``)
``weight_decay``            on weights only (see ``steplab.optim.groups.param_groups``)
``warmup``                  ``schedule.warmup``, fraction of the run (AlgoPerf ``warmup_factor``)
``beta1``, ``beta2``        ``betas[0]``/``betas[1]``; ``beta1`` is ``momentum`` for SGD-like optimizers
``one_minus_beta1/2``       ``1 - beta`` (log-uniform friendly, AlgoPerf style)
``momentum``                ``optimizer.momentum``
``label_smoothing``         classification workloads only (the train loop ignores it elsewhere)
``grad_clip``, ``batch_size``  the fields of the same name
``schedule.<key>``          any parameter of the schedule (``schedule.decay``)
``optimizer.<key>``         any optimizer kwarg (``optimizer.nesterov``)
``curriculum.<key>``        any option of the data schedule (``curriculum.start``; ``curriculum.name``)
``search_space.<name>``     one parameter of the search space (``--set`` only)
==========================  =====================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: AlgoPerf's names for steplab's keys
ALIASES = {"learning_rate": "lr", "warmup_factor": "warmup"}
#: keys that are Algorithm fields of the same name
FIELD_HP = ("lr", "weight_decay", "label_smoothing", "grad_clip", "batch_size")
BETA_HP = ("beta1", "one_minus_beta1", "beta2", "one_minus_beta2")
HYPERPARAMETERS = (*FIELD_HP, "warmup", *BETA_HP, "momentum")
#: the tables a dotted key reaches into: ``schedule.decay``, ``optimizer.nesterov``, ``curriculum.start``...
TABLES = ("schedule", "optimizer", "search_space", "curriculum")
_ONE_MINUS = "one_minus_"


@dataclass(frozen=True)
class Key:
    """A parsed key. ``kind`` is ``field`` (``name`` is the Algorithm field), ``warmup``,
    ``beta`` (``name`` is ``beta1``, ``one_minus_beta2``...), ``momentum``, ``table``
    (``name`` is the key inside ``table``) or ``unknown`` (``name`` is the key as given)."""

    kind: Literal["field", "warmup", "beta", "momentum", "table", "unknown"]
    name: str
    table: str | None = None

    @property
    def one_minus(self) -> bool:
        """True for ``one_minus_beta1``/``one_minus_beta2``: the value is ``1 - beta``."""
        return self.kind == "beta" and self.name.startswith(_ONE_MINUS)

    @property
    def beta(self) -> str:
        """``beta1`` or ``beta2``: which beta a ``beta`` key sets."""
        return self.name.removeprefix(_ONE_MINUS)


def parse_key(raw: str) -> Key:
    """The :class:`Key` of ``raw`` (AlgoPerf's ``learning_rate``/``warmup_factor`` accepted).

    >>> parse_key("schedule.decay")
    Key(kind='table', name='decay', table='schedule')
    >>> parse_key("one_minus_beta2").beta
    'beta2'
    """
    if not isinstance(raw, str):  # a Python caller's keys may be anything
        return Key("unknown", repr(raw))
    key = ALIASES.get(raw, raw)
    if key in FIELD_HP:
        return Key("field", key)
    if key == "warmup":
        return Key("warmup", key)
    if key in BETA_HP:
        return Key("beta", key)
    if key == "momentum":
        return Key("momentum", key)
    table, dot, sub = key.partition(".")
    if dot and sub and table in TABLES:
        return Key("table", sub, table)
    return Key("unknown", key)
