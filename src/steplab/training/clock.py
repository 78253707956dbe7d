"""The training clock of a :class:`~steplab.training.recorder.Recorder`: wall time since it
started minus evaluation (``with rec.evaluating():``, AlgoPerf's rule) and minus what steplab's
own instrument costs (the recorder's hooks, ``log`` and flushes, store writes, and the training
loop's bookkeeping between two updates: logging, the divergence check, progress, pruning,
between :meth:`TrainingClock.pause` and :meth:`TrainingClock.resume`), so the time axis
measures the training algorithm (data, forward, backward, optimizer and schedule steps), not
the harness."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any


class TrainingClock:
    """Mixin: the clock's state (set by :meth:`_start_clock`) and its readings.

    Three kinds of time are off the clock and never overlap: evaluation blocks
    (:attr:`eval_time_s`), a pause (:meth:`pause` .. :meth:`resume`; an evaluation inside it
    counts as evaluation) and the recorder's own work while the clock runs (:meth:`_untimed`),
    the last two summed in :attr:`untimed_s`."""

    eval_time_s: float

    def _start_clock(self) -> None:
        self.eval_time_s = 0.0
        self._start = time.perf_counter()
        self._eval_depth = 0
        self._eval_start = 0.0
        self._paused = False
        self._pause_start = 0.0
        # not training time: writing rows to the store, the recorder's own work (its hooks,
        # log(), reducing the norms at flush) and pauses, as evaluation is not
        self._paused_s = 0.0

    def _reading(self, now: float) -> float:
        """The training clock at ``perf_counter()`` time ``now`` (stopped in an evaluation or
        a pause: its start)."""
        if self._eval_depth:
            now = self._eval_start
        elif self._paused:
            now = self._pause_start
        return now - self._start - self.eval_time_s - self._paused_s

    @property
    def train_time_s(self) -> float:
        """Training time so far: wall time since the recorder was built minus time spent in
        :meth:`evaluating` blocks, pauses, writing rows to the store and the recorder's own
        work (its optimizer hooks, :meth:`log`, flushes); a block or pause still open counts
        from its start."""
        return self._reading(time.perf_counter())

    def _untimed(self, since: float) -> None:
        """Keep the time since ``perf_counter()`` reading ``since`` off the clock, if the
        clock runs (inside an evaluation or a pause it is already off)."""
        if not (self._eval_depth or self._paused):
            self._paused_s += time.perf_counter() - since

    def pause(self) -> None:
        """Stop the training clock until :meth:`resume` (the training loop pauses it after
        each update for its own bookkeeping). Idempotent."""
        if not self._paused:
            self._paused = True
            self._pause_start = time.perf_counter()

    def resume(self) -> None:
        """Restart the clock stopped by :meth:`pause` (a no-op if it runs)."""
        if self._paused:
            self._paused = False
            if not self._eval_depth:
                self._paused_s += time.perf_counter() - self._pause_start

    @property
    def untimed_s(self) -> float:
        """Seconds kept off the training clock besides evaluation: the recorder's own work
        (hooks, :meth:`log`, flushes), writing rows to the store and pauses (one still open
        counts up to now)."""
        if self._paused and not self._eval_depth:
            return self._paused_s + time.perf_counter() - self._pause_start
        return self._paused_s

    @contextlib.contextmanager
    def evaluating(self) -> Iterator[Any]:
        """Time spent inside ``with rec.evaluating():`` is evaluation time: it is left out
        of ``time_s`` and added to :attr:`eval_time_s`. Blocks may nest; inside a pause the
        block's time moves from the pause to evaluation."""
        if self._eval_depth == 0:
            self._eval_start = time.perf_counter()
            if self._paused:
                self._paused_s += self._eval_start - self._pause_start
        self._eval_depth += 1
        try:
            yield self
        finally:
            self._eval_depth -= 1
            if self._eval_depth == 0:
                end = time.perf_counter()
                self.eval_time_s += end - self._eval_start
                if self._paused:
                    self._pause_start = end
