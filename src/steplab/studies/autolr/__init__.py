"""AutoLRS: a learning-rate schedule found during the run, stage by stage.

Jin, Zhou, Zhao, Zhu, Guo, Canini, Krishnamurthy, "AutoLRS: Automatic Learning-Rate
Schedule by Bayesian Optimization on the Fly", ICLR 2021 (arXiv 2105.10762); reference code
YuchenJin/autolrs (``autolrs_server.py``, ``autolrs_callback.py``), read for the details
below, not copied. The run is cut into stages of ``tau`` steps and each stage gets one
constant LR:

1. At the stage start, checkpoint the model, the optimizer, the RNG states and the position
   in the data stream.
2. For ``k`` candidate LRs (``k = 10`` in the paper) proposed by Bayesian optimization over
   log-LR (Optuna's ``GPSampler``, a Gaussian process with log expected improvement; the
   reference uses scikit-optimize's GP with a lower-confidence bound): restore the
   checkpoint, train ``tau' = tau / 10`` steps, measure the validation loss at up to 16
   points (the reference evaluates every ``tau'/16`` steps), fit the exponential model
   ``L(t) = a exp(b t) + c`` with ``b < 0`` (:func:`fit_exponential`) and predict the loss
   after ``tau`` steps: that prediction is the BO objective.
3. Restore, train the full ``tau`` steps with the candidate of lowest predicted loss, and
   go on. ``tau`` doubles after every stage up to ``tau_max = 8 tau`` (reference: 1000 ->
   8000 steps, ``EXPLOITATION_STEP``/``TAU_MAX``).

The stages' LRs form the *emergent schedule*, kept as a ``piecewise`` schedule spec
(:meth:`AutoLRSResult.schedule_spec`, JSON; ``steplab run --schedule FILE.json`` and every
other command take it) whose multipliers are relative to the algorithm's own peak ``lr``.

Where steplab differs from the reference, on purpose:

* Every candidate and the kept stage see the *same* minibatches (the stage's stream is
  cached and rewound with the checkpoint); the reference lets the data loader run on. The
  candidates are compared on common data, and the kept trajectory is exactly what a plain
  ``run_trial`` with the emergent schedule and the same seed trains (``tests/test_autolr.py``
  checks the two traces are equal), so "replay the schedule without the search" is exact.
  (Bit for bit for optimizers without train/eval modes: a schedule-free optimizer's switch
  to eval mode for the extra stage-start evaluation and back rounds its parameters.)
* Candidates train a scratch copy of the model and optimizer loaded from the checkpoint, so
  the recorder of the kept run never sees a candidate's step; the RNG states are restored
  before the kept stage.
* The exponential model is fitted to the raw validation points (the reference first runs
  scipy's ``UnivariateSpline`` with its default smoothing ``s = m``, which for losses of
  order 1 and unit weights reduces to a global quadratic). The decay rate is bounded to
  ``[0.5, 1000] / tau'``: predicting ``tau = 10 tau'`` ahead then extends the drop seen in
  the window at most 2.5-fold ((1 - e^-5) / (1 - e^-0.5)); with a looser bound the short
  windows of steplab's budgets (4-30 steps) extrapolated near-linear trends to negative
  losses. Predictions are floored at 0 (every built-in loss is non-negative) and ties go to
  the candidate with the lower last observed loss.
* A candidate whose validation loss rises above the stage's starting value is scored by
  its last value instead of an extrapolation (the reference does this in its validation
  stage); a diverged candidate scores ``max(2 L_0, worst value seen)``.
* The validation loss is always the signal (the reference uses the training loss until
  ``tau`` reaches ``tau_max``); steplab's workloads evaluate in milliseconds.
* There is no warm-up phase before the first stage (the reference can warm up linearly to a
  given LR); the first stage's search covers the whole LR range instead.

Costs are kept apart (DESIGN.md, "Time-to-result counts training time only"): the kept
run's training time excludes the search, whose steps and seconds are reported as
``search_steps``/``search_time_s`` and stored with the trial's final metrics.
"""
from steplab.studies.autolr.fit import ExpModel, fit_exponential
from steplab.studies.autolr.record import (
    AutoLRSConfig,
    AutoLRSResult,
    Candidate,
    Stage,
    anneal_tail,
    default_lr_range,
    load_result,
    plan_stages,
    replay_algorithm,
)
from steplab.studies.autolr.run import StageEvent, StageProgress, run_autolrs

__all__ = [
    "AutoLRSConfig",
    "AutoLRSResult",
    "Candidate",
    "ExpModel",
    "Stage",
    "StageEvent",
    "StageProgress",
    "anneal_tail",
    "default_lr_range",
    "fit_exponential",
    "load_result",
    "plan_stages",
    "replay_algorithm",
    "run_autolrs",
]
