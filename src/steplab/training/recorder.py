"""A per-step trace of any PyTorch training loop, in three lines (DESIGN.md, "recorder.py").

::

    rec = steplab.training.recorder.Recorder(optimizer, db="steplab.db", name="my-run", config=cfg)
    for batch in data:
        loss = model(batch); loss.backward(); optimizer.step(); optimizer.zero_grad()
        rec.log(loss)                      # after optimizer.step(); optional **evals
    rec.close()                            # flushes; ``with Recorder(...) as rec:`` also works

Each optimizer step records one :class:`~steplab.results.StepRow`: the step index (0-based),
cumulative *training* time (time inside ``with rec.evaluating():`` is excluded, DESIGN.md
"Conventions", and so is the recorder's own work: its hooks, :meth:`Recorder.log`, reducing
and writing rows; what remains is the user's loop, so the clock measures the training
algorithm, not the instrument; ``rec.pause()`` ... ``rec.resume()`` keeps a loop's own
bookkeeping off it too, as steplab's loop does between updates), the learning rate of
``param_groups[0]`` used by the step, the loss passed to :meth:`Recorder.log`, and global
norms of the gradient (l2 and l1) and of the update ``theta_new - theta_old`` (l2), every
``norm_every`` steps (default: every step; NaN on the others). Norms come from optimizer step hooks
(``Optimizer.register_step_pre_hook``/``register_step_post_hook``, torch >= 2.0) over all
parameters that have a gradient, as ``torch.nn.utils.clip_grad_norm_`` defines them, in a
few whole-model kernels a step (:class:`~steplab.training.trace_values.StepNorms`: on the CPU
copies into a preallocated ring reduced a ring at a time, nothing allocated per step;
``torch._foreach_norm`` on an accelerator). They stay on the device and are
reduced and copied to the host once every ``flush_every`` steps, so recording adds no
per-step host-device synchronization; timestamps are host ``perf_counter`` readings.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from steplab.errors import SpecError, StoreError
from steplab.results import STEP_COLUMNS, EvalRow, StepRow, TrialResult, current_environment
from steplab.store import Store, new_worker_id, open_store
from steplab.training.clock import TrainingClock
from steplab.training.monitoring import Monitoring, check_every, monitor_list
from steplab.training.trace_values import (
    Deferred,
    PartialNorm,
    StepNorms,
    materialize,
    split_of,
    user_trial_spec,
)

__all__ = ["Recorder"]

_Value = float | torch.Tensor | None


class Recorder(TrainingClock):
    """Record one row per optimizer step of ``optimizer`` (see the module docstring).

    Three ways to keep the rows:

    - ``db="steplab.db"`` (a path or SQLAlchemy URL): the recorder opens the store and starts
      a trial (workload ``"user"``, algorithm = the optimizer's class name, hyperparameters =
      ``config``, ``name`` as its label). :meth:`close` finishes it: status ``"budget"``, or
      ``"failed"`` with the exception when the ``with`` block raised (``"interrupted"`` on
      Ctrl-C).
    - ``store=store, trial_id=tid``: rows go to an existing trial that the caller finishes
      (the train loop does this).
    - neither: rows stay in memory (:attr:`rows`, :attr:`eval_rows`, :meth:`trace`).

    Args:
        optimizer: any ``torch.optim.Optimizer``; hooks are attached now and removed by
            :meth:`close`. Parameters whose ``grad`` is ``None`` are ignored.
        db: where to store a new trial (path or URL); excludes ``store``.
        store: an open :class:`~steplab.store.Store`; needs ``trial_id``.
        trial_id: the trial in ``store`` that receives the rows.
        name: a label for a trial created from ``db``.
        config: the run's settings, stored as the trial's hyperparameters (values JSON cannot
            hold are stored as strings); ``config["seed"]`` and ``config["budget_steps"]``
            fill the trial spec when present.
        flush_every: copy pending values to the host and write them every this many steps.
        grad_norm: record the global l2 gradient norm.
        l1: also record the global l1 gradient norm.
        update_norm: record ``||theta_new - theta_old||_2``; costs one copy of the
            parameters (preallocated) and two ``_foreach`` kernels per step.
        norm_every: compute the norms on steps ``0, norm_every, 2*norm_every, ...`` only
            (the others record NaN norms; loss, lr and time stay per step). 1, the default,
            keeps ``steplab refine`` and the bound exactly as recorded every step.
        monitors: training-dynamics monitors (``"sharpness,laziness"``,
            :mod:`steplab.monitors`) that :meth:`monitor` measures on ``model`` with
            ``loss_fn(model, batch)`` over the fixed ``probe_batches``, recorded as
            ``dynamics/...`` evaluation rows (evaluation time). With ``monitor_every`` they
            are measured now (step 0) and after every ``monitor_every`` steps; otherwise call
            :meth:`monitor` at your cadence. theta_0 (``laziness``) is ``model`` when the
            monitoring starts (here when ``model``, ``loss_fn`` and ``probe_batches`` are
            given). Monitors never change the training trajectory.

    The clock starts when the recorder is built; ``time_s`` is host wall time (no device
    synchronization per step, so on an accelerator a step's time is exact only on average).
    Closure-based optimizers (LBFGS) compute gradients inside ``step``: the pre-step hook
    then sees the previous gradients.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        *,
        db: str | Path | None = None,
        store: Store | None = None,
        trial_id: int | None = None,
        name: str | None = None,
        config: Mapping[str, Any] | None = None,
        flush_every: int = 200,
        norm_every: int = 1,
        grad_norm: bool = True,
        l1: bool = True,
        update_norm: bool = True,
        monitors: str | Sequence[str] | None = None,
        model: torch.nn.Module | None = None,
        loss_fn: Callable[[torch.nn.Module, Any], torch.Tensor] | None = None,
        probe_batches: Sequence[Any] | None = None,
        monitor_every: int | None = None,
    ) -> None:
        if flush_every < 1:
            raise SpecError(f"flush_every must be >= 1, got {flush_every}")
        if norm_every < 1:
            raise SpecError(f"norm_every must be >= 1, got {norm_every}")
        if db is not None and store is not None:
            raise SpecError("pass either db= (a path or URL) or store= with trial_id=, not both")
        if (store is None) != (trial_id is None):
            raise SpecError("store= and trial_id= go together: pass both, or db= instead")
        self.optimizer = optimizer
        self.flush_every = int(flush_every)
        self.record_grad_norm = grad_norm
        self.record_l1 = l1
        self.record_update_norm = update_norm
        self.norm_every = int(norm_every)
        self._norms = StepNorms(grad_norm, l1, update_norm) if grad_norm or l1 or update_norm else None
        #: number of optimizer steps taken so far; the next step row gets this index
        self.step = 0
        self._start_clock()
        # pending rows: [step, time_s, lr, loss, grad_norm, grad_norm_l1, update_norm]
        self._pending: list[list[Any]] = []
        self._pending_evals: list[EvalRow] = []
        self._times: list[float] = []  # training time after each update (kept for step_times)
        self._rows: list[StepRow] = []
        self._eval_rows: list[EvalRow] = []
        self._last_metrics: dict[str, float] = {}
        self._logged = True  # the latest step row already has its loss
        self._warned_log = False
        self._step_state: tuple[Any, Any, Any] = (None, None, None)
        self._closed = False
        self._monitors = monitor_list(monitors)
        check_every(monitor_every)
        if monitor_every is not None and (not self._monitors or model is None or loss_fn is None or not probe_batches):
            raise SpecError("monitor_every= needs monitors=, model=, loss_fn= and probe_batches=")
        self.monitor_every = monitor_every
        self._monitoring: Monitoring | None = None
        if self._monitors and model is not None and loss_fn is not None and probe_batches:
            self._monitoring = Monitoring.of(self._monitors, monitor_every or 1, model=model, loss=loss_fn,
                                             batches=probe_batches)

        self._owns_store = db is not None
        self._owns_trial = db is not None
        self.store: Store | None = store
        self.trial_id: int | None = trial_id
        if db is not None:
            spec = user_trial_spec(optimizer, config)
            spec.settings.update(monitors=[str(m) for m in ([monitors] if isinstance(monitors, str) else monitors or [])],
                                 monitor_every=monitor_every)
            self.store = open_store(db)
            try:
                self.trial_id = self.store.start_trial(
                    spec, name=name, worker=new_worker_id(), **current_environment(self._device()).fields()
                )
            except BaseException:
                self.store.close()
                raise
            self._spec = spec
        elif store is not None:
            store.get_trial(trial_id)  # type: ignore[arg-type]  # fail now on an unknown id

        self._handles = [
            optimizer.register_step_pre_hook(self._pre_step),
            optimizer.register_step_post_hook(self._post_step),
        ]
        if monitor_every is not None:
            self.monitor()

    # -- hooks -------------------------------------------------------------------------
    def _device(self) -> str:
        for group in self.optimizer.param_groups:
            for p in group["params"]:
                return str(p.device)
        return "cpu"

    def _pre_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        """Before ``optimizer.step()``: flush if due, read lr, gradient norms (when due),
        snapshot the parameters. Its own time is not training time."""
        if len(self._pending) >= self.flush_every:
            self.flush()
        start = time.perf_counter()
        groups = optimizer.param_groups
        lr = groups[0].get("lr") if groups else None
        if lr.__class__ is not float and isinstance(lr, torch.Tensor):
            lr = lr.detach().clone()
        if self._norms is not None and self.step % self.norm_every == 0:
            gn, gn1 = self._norms.before(groups)
            self._step_state = (lr, gn, gn1)
        else:
            self._step_state = (lr, None, None)
        self._untimed(start)

    def _post_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        """After ``optimizer.step()``: training time (read first: the rest is the recorder's
        own work, not training time), update norm, a pending row."""
        start = time.perf_counter()
        now = self._reading(start)
        lr, gn, gn1 = self._step_state
        self._step_state = (None, None, None)
        un = self._norms.after() if self._norms is not None else None
        self._pending.append([self.step, now, lr, None, gn, gn1, un])
        self._times.append(now)
        self.step += 1
        self._logged = False
        self._untimed(start)
        if self.monitor_every is not None and self.step % self.monitor_every == 0:
            self.monitor()

    # -- user calls --------------------------------------------------------------------
    def log(self, loss: float | torch.Tensor | None = None, **evals: float | torch.Tensor) -> None:
        """Attach ``loss`` to the step just taken (call it after ``optimizer.step()``) and
        record ``evals`` like :meth:`eval`. A tensor loss stays on its device until the next
        flush. Logging twice without a step in between (e.g. a step skipped by
        ``GradScaler``) drops the second loss with a warning. Its time is not training time."""
        start = time.perf_counter()
        if loss is not None:
            if self._logged or not self._pending:
                if not self._warned_log:
                    warnings.warn(
                        f"Recorder.log() without a new optimizer step (step {self.step}): the "
                        "loss is dropped; call log() once after each optimizer.step()",
                        stacklevel=2,
                    )
                    self._warned_log = True
            else:
                if isinstance(loss, torch.Tensor):
                    if loss.numel() != 1:
                        raise SpecError(
                            f"log() needs a scalar loss, got shape "
                            f"{tuple(loss.shape)}: pass loss.mean() or loss.item()"
                        )
                    value: _Value = loss.detach() if loss.dim() == 0 else loss.detach().reshape(())
                else:
                    value = float(loss)
                self._pending[-1][3] = value
                self._logged = True
        if evals:
            self.eval(**evals)
        self._untimed(start)

    def eval(self, step: int | None = None, **metrics: float | torch.Tensor) -> None:
        """Record evaluation results, e.g. ``rec.eval(**{"validation/loss": 0.3})``.

        ``step`` defaults to :attr:`step`, the number of optimizer steps taken so far (an
        evaluation before training is step 0, nanoGPT's convention). A metric without a
        ``split/`` prefix is put under ``validation/``. The time is the training time so far.
        """
        at = self.step if step is None else int(step)
        now = self.train_time_s
        for metric, raw in metrics.items():
            value = (
                float(raw.detach().float().item()) if isinstance(raw, torch.Tensor) else float(raw)
            )
            split, full = split_of(metric)
            row = EvalRow(step=at, time_s=now, split=split, metric=full, value=value)
            self._pending_evals.append(row)
            self._last_metrics[full] = value

    def amend(self, **values: float | torch.Tensor | None) -> dict[str, Any]:
        """Replace columns of the step just taken with values a training framework computed
        itself, e.g. the Hugging Face Trainer's pre-clipping ``grad_norm`` or Lightning's
        gradients seen in ``on_before_optimizer_step`` (:mod:`steplab.integrations`).

        Columns: ``lr``, ``grad_norm``, ``grad_norm_l1``, ``update_norm`` (the loss goes
        through :meth:`log`). A tensor stays on its device until the next flush. Returns the
        values replaced (tensors, floats or ``None``). The row must not be flushed yet: call
        it before the next ``optimizer.step()``.
        """
        if not self._pending or self._pending[-1][0] != self.step - 1:
            raise SpecError(
                f"amend() found no unflushed row for step {self.step - 1}: call it after "
                "optimizer.step() and before the next step or flush()"
            )
        row = self._pending[-1]
        old: dict[str, Any] = {}
        for column, value in values.items():
            if column not in ("lr", "grad_norm", "grad_norm_l1", "update_norm"):
                raise SpecError(
                    f"amend() cannot set {column!r}: use lr, grad_norm, grad_norm_l1 or "
                    "update_norm (the loss goes through log())"
                )
            j = STEP_COLUMNS.index(column)
            if isinstance(row[j], Deferred) and self._norms is not None:
                self._norms.settle()
            old[column] = (row[j].value() if isinstance(row[j], PartialNorm)
                           else row[j].value if isinstance(row[j], Deferred) else row[j])
            if isinstance(value, torch.Tensor):
                row[j] = value.detach().reshape(())
            else:
                row[j] = None if value is None else float(value)
        return old

    def monitor(self, model: torch.nn.Module | None = None, loss_fn: Callable[[torch.nn.Module, Any], torch.Tensor] | None = None,
                batches: Sequence[Any] | None = None) -> dict[str, float]:
        """Measure the ``monitors`` now, after :attr:`step` updates, and record them as
        ``dynamics/...`` evaluation rows (evaluation time, not training time); returns them.
        ``model``, ``loss_fn`` and ``batches`` are needed at the first call unless the
        constructor had them (theta_0 is ``model`` then)."""
        if not self._monitors:
            raise SpecError("monitor() needs monitors: Recorder(..., monitors='sharpness,laziness')")
        if self._monitoring is None:
            if model is None or loss_fn is None or not batches:
                raise SpecError("the first monitor() call needs model=, loss_fn= and batches= (fixed probe batches)")
            self._monitoring = Monitoring.of(self._monitors, 1, model=model, loss=loss_fn, batches=batches)
        with self.evaluating():
            values = self._monitoring.measure(self.step, self.optimizer)
        self.eval(**values)
        for key in values:  # final metrics are evaluations, as a steplab trial's
            self._last_metrics.pop(key, None)
        return values

    def flush(self) -> None:
        """Reduce pending norms, copy pending values to the host (one transfer per device)
        and write the rows: to the store in one transaction per table, or to memory. Its
        time is not training time."""
        start = time.perf_counter()
        if self._pending:
            if self._norms is not None:
                self._norms.settle()
            rows = materialize(self._pending)
            self._pending = []
            if self.store is not None:
                self.store.append_steps(self.trial_id, rows)  # type: ignore[arg-type]
            else:
                self._rows.extend(rows)
        if self._pending_evals:
            evals, self._pending_evals = self._pending_evals, []
            if self.store is not None:
                self.store.append_evals(self.trial_id, evals)  # type: ignore[arg-type]
            else:
                self._eval_rows.extend(evals)
        self._untimed(start)

    # -- reading back ------------------------------------------------------------------
    @property
    def rows(self) -> list[StepRow]:
        """Every step row so far (flushes first); copies."""
        self.flush()
        if self.store is not None:
            return self.store.step_rows(self.trial_id)  # type: ignore[arg-type]
        return [StepRow(**vars(r)) for r in self._rows]

    @property
    def eval_rows(self) -> list[EvalRow]:
        """Every evaluation row so far (flushes first); copies."""
        self.flush()
        if self.store is not None:
            return self.store.evals(self.trial_id)  # type: ignore[arg-type]
        return [EvalRow(**vars(r)) for r in self._eval_rows]

    def trace(self) -> dict[str, np.ndarray]:
        """The step trace as ``{column: array}`` over ``STEP_COLUMNS`` (``step`` int64, the
        rest float64 with NaN for values not recorded), like ``Store.steps``."""
        self.flush()
        if self.store is not None:
            return self.store.steps(self.trial_id)  # type: ignore[arg-type]
        out: dict[str, np.ndarray] = {}
        for column in STEP_COLUMNS:
            values = [getattr(r, column) for r in self._rows]
            dtype = np.int64 if column == "step" else np.float64
            out[column] = np.array(values, dtype=dtype)
        return out

    def step_times(self) -> np.ndarray:
        """Training time after each update so far (:meth:`trace`'s ``time_s``, not read back)."""
        return np.asarray(self._times, dtype=np.float64)

    # -- closing -----------------------------------------------------------------------
    def close(self, status: str = "budget", message: str = "") -> None:
        """Flush, remove the hooks and, for a trial created from ``db=``, finish it with
        ``status`` (``"budget"`` for a user loop that ran to its end) and close the store.
        Idempotent."""
        if self._closed:
            return
        self._closed = True
        for handle in self._handles:
            handle.remove()
        if self._norms is not None:
            self._norms.clear()
        try:
            self.flush()
            if self._owns_trial and self.store is not None:
                result = TrialResult(
                    spec=self._spec,
                    status=status,  # type: ignore[arg-type]
                    steps=self.step,
                    train_time_s=self.train_time_s,
                    eval_time_s=self.eval_time_s,
                    final_metrics=dict(self._last_metrics),
                    message=message,
                    **current_environment(self._device()).fields(),
                )
                self.store.finish_trial(self.trial_id, result)  # type: ignore[arg-type]
        finally:
            if self._owns_store and self.store is not None:
                self.store.close()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None:
            self.close()
            return
        message = " ".join(f"{exc_type.__name__}: {exc}".split())
        status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"  # Ctrl-C: kept, not failed
        with contextlib.suppress(StoreError):  # never hide the user's exception
            self.close(status=status, message=message)

    def __repr__(self) -> str:
        where = f"trial {self.trial_id} in {self.store.url}" if self.store else "memory"
        return f"Recorder({type(self.optimizer).__name__}, step={self.step}, {where})"
