"""The training clock of a :class:`~steplab.training.recorder.Recorder`: wall time since it
started minus evaluation (``with rec.evaluating():``, AlgoPerf's rule) and minus what steplab's
own instrument costs (the recorder's hooks, ``log`` and flushes, store writes, the loop's
divergence check), so the time axis measures the training algorithm, not the harness."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any


class TrainingClock:
    """Mixin: the clock's state (``_start``, ``_eval_depth``, ``_eval_start``,
    ``eval_time_s``, ``_paused_s``, set by :meth:`_start_clock`) and its readings."""

    eval_time_s: float

    def _start_clock(self) -> None:
        self.eval_time_s = 0.0
        self._start = time.perf_counter()
        self._eval_depth = 0
        self._eval_start = 0.0
        # not training time: writing rows to the store and the recorder's own work (its hooks,
        # log(), reducing the norms at flush), as evaluation is not
        self._paused_s = 0.0

    @property
    def train_time_s(self) -> float:
        """Training time so far: wall time since the recorder was built minus time spent in
        :meth:`evaluating` blocks (a block still open counts from its start), writing rows to
        the store and in the recorder's own work (its optimizer hooks, :meth:`log`, flushes)."""
        now = self._eval_start if self._eval_depth else time.perf_counter()
        return now - self._start - self.eval_time_s - self._paused_s

    def exclude(self, seconds: float) -> None:
        """Keep ``seconds`` of the caller's bookkeeping off the training clock (the training
        loop's divergence check: the harness's work, not the algorithm's)."""
        if not self._eval_depth:
            self._paused_s += seconds

    @property
    def untimed_s(self) -> float:
        """Seconds kept off the training clock besides evaluation: the recorder's own work
        (hooks, :meth:`log`, flushes) and writing rows to the store."""
        return self._paused_s

    @contextlib.contextmanager
    def evaluating(self) -> Iterator[Any]:
        """Time spent inside ``with rec.evaluating():`` is evaluation time: it is left out
        of ``time_s`` and added to :attr:`eval_time_s`. Blocks may nest."""
        if self._eval_depth == 0:
            self._eval_start = time.perf_counter()
        self._eval_depth += 1
        try:
            yield self
        finally:
            self._eval_depth -= 1
            if self._eval_depth == 0:
                self.eval_time_s += time.perf_counter() - self._eval_start
