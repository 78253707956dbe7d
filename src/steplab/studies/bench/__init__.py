"""The benchmark: suites, rulesets, planning, resuming and scoring (AlgoPerf, Dahl et al.
2023, "Benchmarking Neural Network Training Algorithms", arXiv 2306.07179).

* A **suite** names workloads (and variants) with their budgets.
* A **benchmark spec** (TOML or Python) names the suite, the algorithms, the ruleset, the
  number of tuning trials ``N`` and of independent studies ``S``.
* **External tuning** (AlgoPerf §4.2.1): per algorithm, workload and study, ``N``
  hyperparameter points drawn quasi-randomly (Optuna's scrambled Sobol sampler) from the
  algorithm's search space; a study's time is its fastest trial that reached the target;
  the workload's time is the median over studies.
* **Self-tuning** (§4.2.2): one trial per study with the algorithm's defaults and a budget
  three times the external one.

* **Refined algorithms**: ``refined(ALGO)`` (optionally ``refined(ALGO, tau=0.05, norm=l2)``)
  runs ALGO with its own schedule for the whole budget, refines a schedule from that run's
  gradient norms (Defazio et al. 2023, ``steplab.analysis.refine``) and runs ALGO again with it; the
  algorithm is scored twice, ``refined(ALGO)`` counting both passes and
  ``refined(ALGO) 2nd pass`` counting the second only.
* **Tradeoff curves** (``tradeoff = "cyclic"``, Portes et al. 2022, ``steplab.studies.tradeoff``): per
  algorithm and workload, one run of the algorithm's defaults (first seed) with cycles ending
  at 1/8, 1/4, 1/2 and all of the budget, evaluated at each cycle end, plus one separate run
  per cycle budget; stored as ``ALGO tradeoff:cyclic`` / ``ALGO tradeoff:separate`` trials,
  which time-to-target scoring skips. Refined algorithms get no curve.

Every trial is keyed by everything that determines it (``TrialSpec.key``); running a spec
again skips the trials already finished in the store and re-runs those a killed run left
``running``, so a killed benchmark resumes where it stopped.

Modules: ``suites`` (workloads and budgets), ``names`` (plain and refined algorithm names),
``spec`` (``BenchSpec``, TOML), ``planning`` (the trials), ``runner`` (open, run, resume),
``scores`` (tables, profiles, intervals, verdicts), ``costs`` (per-step costs from the
traces, for the ``cost_s`` time axis), ``looks`` and ``adaptive`` (adding studies until the
top is separated: ``until_confident``, ``max_studies``).
"""

import importlib
from typing import Any

#: public name -> the submodule that defines it; imported on first use (PEP 562), so that
#: scoring a stored benchmark (``steplab report``) does not import the training stack
_NAMES: dict[str, str] = {
    "BenchSpec": "spec",
    "Benchmark": "runner",
    "REFINE_DEFAULTS": "names",
    "RULESETS": "spec",
    "SECOND_PASS": "scores",
    "SELF_TUNING_BUDGET_FACTOR": "planning",
    "SUITES": "suites",
    "Scores": "scores",
    "Look": "looks",
    "Suite": "suites",
    "SuiteEntry": "suites",
    "algorithm_for": "names",
    "costed_trials": "costs",
    "algorithm_list": "names",
    "get_suite": "suites",
    "load_spec": "spec",
    "mapping_to_spec": "spec",
    "noise_floor": "scores",
    "open_benchmark": "runner",
    "parse_refined": "names",
    "parse_workload_list": "suites",
    "plan": "planning",
    "refined_name": "names",
    "refined_views": "scores",
    "run": "runner",
    "run_until_confident": "adaptive",
    "score": "scores",
    "scored_trials": "scores",
    "tradeoff_jobs": "planning",
}


def __getattr__(name: str) -> Any:
    if name not in _NAMES:
        raise AttributeError(f"module 'steplab.studies.bench' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"steplab.studies.bench.{_NAMES[name]}"), name)
    globals()[name] = value
    return value


__all__ = [
    "REFINE_DEFAULTS",
    "RULESETS",
    "SECOND_PASS",
    "SELF_TUNING_BUDGET_FACTOR",
    "SUITES",
    "BenchSpec",
    "Benchmark",
    "Scores",
    "Look",
    "Suite",
    "SuiteEntry",
    "algorithm_for",
    "costed_trials",
    "algorithm_list",
    "get_suite",
    "load_spec",
    "mapping_to_spec",
    "noise_floor",
    "open_benchmark",
    "parse_refined",
    "parse_workload_list",
    "plan",
    "refined_name",
    "refined_views",
    "run",
    "run_until_confident",
    "score",
    "scored_trials",
    "tradeoff_jobs",
]
