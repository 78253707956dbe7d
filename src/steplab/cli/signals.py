"""SIGTERM as Ctrl-C for the commands that train one run (``run``, ``autolr``, ``continual``,
``sensitivity``): both raise :class:`steplab.errors.Interrupted` in the main thread, the
library keeps the trial as ``interrupted`` (``steplab.training.interrupts``) and the command
says in one line what happened and what a re-run does."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

from steplab.errors import Interrupted


def _raise(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signum=signum)


@contextlib.contextmanager
def interruptible(rerun: str) -> Iterator[None]:
    """Inside the block SIGTERM raises :class:`Interrupted` (SIGINT already raises
    ``KeyboardInterrupt``); one that leaves it is re-raised with ``rerun``, what running
    the same command again does, after its message (``friendly`` prints it and exits with
    130 or 143)."""
    main = threading.current_thread() is threading.main_thread()  # only there can Python catch signals
    previous = signal.signal(signal.SIGTERM, _raise) if main else None
    try:
        yield
    except KeyboardInterrupt as e:
        done = Interrupted.of(e)
        raise Interrupted.of(e, f"{done.message or 'no trial was in progress'}; {rerun}") from None
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
