"""Training algorithms: optimizer + schedule + hyperparameters + search space.

Modules (this one only re-exports them): ``algorithm`` (:class:`Algorithm`,
:class:`ResolvedAlgorithm`), ``keys`` (the hyperparameter-key parser and the names it
knows), ``specfile`` (TOML in, ``--set`` overrides), ``tomlfmt`` (TOML out), ``baselines``
(the built-ins and :func:`get_algorithm`), ``space`` (search spaces, quasi-random draws),
``defaults`` (what a command uses when no algorithm is named).
"""

from __future__ import annotations

from steplab.algorithms.algorithm import Algorithm, ResolvedAlgorithm
from steplab.algorithms.baselines import algorithm_names, builtins, get_algorithm
from steplab.algorithms.defaults import (
    DEFAULT_ALGORITHM,
    DEFAULT_LR,
    DEFAULT_OPTIMIZER,
    DEFAULT_SCHEDULE,
    stream_hyperparameters,
)
from steplab.algorithms.keys import HYPERPARAMETERS, Key, parse_key
from steplab.algorithms.space import space_from_dict, space_to_dict
from steplab.algorithms.specfile import apply_overrides, from_toml, load_toml
from steplab.algorithms.tomlfmt import toml_value

__all__ = [
    "DEFAULT_ALGORITHM",
    "DEFAULT_LR",
    "DEFAULT_OPTIMIZER",
    "DEFAULT_SCHEDULE",
    "HYPERPARAMETERS",
    "Algorithm",
    "Key",
    "ResolvedAlgorithm",
    "algorithm_names",
    "apply_overrides",
    "builtins",
    "from_toml",
    "get_algorithm",
    "load_toml",
    "parse_key",
    "space_from_dict",
    "space_to_dict",
    "stream_hyperparameters",
    "toml_value",
]
