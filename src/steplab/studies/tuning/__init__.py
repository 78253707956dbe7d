"""Tuning at a fraction of the cost: ``steplab tune``.

One algorithm on one workload, its hyperparameters searched under ONE compute budget
counted in training steps (seconds are recorded too). Every trial is a stored trial of a
study of kind ``tune`` (hyperparameters, trace, evaluations), so a killed tune resumes: the
finished trials are read back, counted against the budget and told to the sampler again.

Strategies (:data:`STRATEGIES`):

* ``qmc``: AlgoPerf-style quasi-random search, Optuna's ``QMCSampler`` (scrambled Sobol),
  full trials (Dahl et al. 2023, "Benchmarking Neural Network Training Algorithms", §4.2).
* ``tpe``: Optuna's ``TPESampler`` (Bergstra et al. 2011), full trials.
* ``median``, ``hyperband``: TPE with Optuna's ``MedianPruner`` / ``HyperbandPruner`` (Li et
  al. 2018), the validation metric reported at every evaluation.
* ``predict``: TPE with :class:`PredictPruner`, steplab's own pruner: at checkpoints of a
  trial (default 10%, 20%, 40% of its steps) it fits the annealing law (Tissue et al. 2024,
  Eq. 1; :mod:`steplab.analysis.laws`) to the trial's evaluations so far, *given the schedule the
  trial will follow to its end*, predicts the final validation loss with its uncertainty
  (delta method on the fit), and prunes when the prediction is worse than the incumbent by
  more than that uncertainty.
* ``asha``, ``pbt``: Ray Tune's ``ASHAScheduler`` (Li et al. 2020) and
  ``PopulationBasedTraining`` (Jaderberg et al. 2017), in :mod:`steplab.studies.tuning_ray`
  (``pip install 'steplab[ray]'``).

A trial that would pass the budget is stopped where the budget ends (recorded ``pruned``,
"compute budget exhausted"): the sum of the trials' steps never exceeds the budget. The
result is the best trial that trained its whole length (pruned trials are not eligible).
With ``seeds = K`` (``--seeds K``) the best point is then trained on K fresh seeds and its
value reported as a mean with a Student-t interval (``seeds``).

Modules: ``spec`` (``TuneSpec``, ``TuneResult``, ``Setup``), ``predict_pruner``,
``optuna_search`` (the Optuna strategies), ``runner`` (open, run, resume, summarize),
``seeds`` (the best point on fresh seeds).
"""

from steplab.studies.tuning.optuna_search import run_optuna
from steplab.studies.tuning.predict_pruner import PredictPruner, optuna_pruner, predict_final
from steplab.studies.tuning.runner import load_result, open_tune, run_tune, summarize
from steplab.studies.tuning.seeds import check_seeds, seeds_study_name, stored_seeds
from steplab.studies.tuning.spec import (
    BUDGET_MESSAGE,
    OPTUNA_STRATEGIES,
    RAY_STRATEGIES,
    STRATEGIES,
    SeedCheck,
    Setup,
    TuneResult,
    TuneSpec,
    final_value,
    is_complete,
    setup,
)

__all__ = [
    "BUDGET_MESSAGE",
    "OPTUNA_STRATEGIES",
    "RAY_STRATEGIES",
    "STRATEGIES",
    "PredictPruner",
    "SeedCheck",
    "Setup",
    "TuneResult",
    "TuneSpec",
    "check_seeds",
    "final_value",
    "is_complete",
    "load_result",
    "open_tune",
    "optuna_pruner",
    "predict_final",
    "run_optuna",
    "run_tune",
    "seeds_study_name",
    "setup",
    "stored_seeds",
    "summarize",
]
