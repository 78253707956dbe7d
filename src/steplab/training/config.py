"""How a trial is run (not what is run: that is the ``TrialSpec``): the settings every
steplab loop shares. Plain data: torch is imported only to start a device."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How a trial is run. The fields that change a result are stored with every trial
    (:meth:`settings`, ``TrialSpec.settings``)."""

    #: "cpu", "cuda", "cuda:1"...; None picks CUDA when available
    device: str | None = None
    #: stop when the target is reached (False: train to the end of the budget)
    stop_at_target: bool = True
    #: a loss above this multiple of the first step's loss counts as diverged
    divergence_factor: float = 20.0
    #: torch intra-op threads for this trial (None leaves torch's setting)
    threads: int | None = None
    #: record gradient and update norms per step (the recorder's cost is measured in
    #: benchmarks/overhead.py)
    record_norms: bool = True
    #: compute those norms every this many steps (NaN on the others); 1 keeps ``steplab
    #: refine`` and the bound exactly as every-step norms give them (``Recorder(norm_every=)``)
    norm_every: int = 1
    #: also evaluate after exactly these update counts (e.g. the ends of the cycles of a
    #: ``budget_cycles`` schedule, ``steplab.studies.tradeoff``), besides every ``eval_every`` steps
    eval_steps: tuple[int, ...] = ()
    #: at every evaluation also record ``train/loss``, the mean loss over this many training
    #: minibatches of a fixed sample (:meth:`Workload.train_loss`); 0 (the default) skips it.
    #: A per-step minibatch loss is too noisy to score a loss-curve prediction against.
    train_eval_batches: int = 0
    #: monitors of the training dynamics (:mod:`steplab.monitors`: ``sharpness``, ``gns``,
    #: ``laziness``, ``logits``, ``grokking``...) measured at step 0 and every
    #: ``monitor_every`` steps on fixed probe batches, outside the training clock, recorded as
    #: evaluation metrics ``dynamics/...``; they never change the trajectory. () measures nothing
    #: and costs nothing.
    monitors: tuple[str, ...] = ()
    #: measure the monitors every this many steps (None: at the evaluation cadence)
    monitor_every: int | None = None

    def settings(self) -> dict[str, Any]:
        """The fields that change a result (or what it records: the monitors), as
        ``TrialSpec.settings`` keys."""
        return {"divergence_factor": float(self.divergence_factor), "eval_steps": sorted(int(k) for k in self.eval_steps),
                "train_eval_batches": int(self.train_eval_batches), "monitors": list(self.monitors),
                "monitor_every": None if self.monitor_every is None else int(self.monitor_every),
                "norm_every": int(self.norm_every)}

    def start(self) -> torch.device:
        """The device of this config (:func:`~steplab.training.device.pick_device`), with
        torch's threads set."""
        import torch

        from steplab.training.device import pick_device

        device = pick_device(self.device)
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        return device
