"""One exception family per kind of failure (DESIGN.md, "Conventions").

Every message is one line that names the problem and the fix. The CLI prints it without a
traceback and exits non-zero. :func:`read_text_file` is the one place a spec file is read.
"""

from __future__ import annotations

import os


class SteplabError(Exception):
    """Root of every error steplab raises on purpose."""


class SpecError(SteplabError, ValueError):
    """A schedule, algorithm, benchmark spec or override is malformed."""


class WorkloadError(SteplabError):
    """An unknown workload or variant, or a workload that cannot be built."""


class StoreError(SteplabError):
    """The results database cannot be opened, read or written safely."""


class TrialPruned(SteplabError):
    """A tuning strategy stopped a trial early on purpose (not a failure)."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) or SIGTERM stopped the work: ``signum`` is the signal and
    :attr:`exit_code` the shell's convention for it (130, 143); the text says what became of
    the work (``"trial 7 kept as 'interrupted' with 53 steps"``). A ``KeyboardInterrupt``, so
    whatever cleans up after Ctrl-C cleans up after it too."""

    def __init__(self, message: str = "", *, signum: int = 2, trial_id: int | None = None) -> None:
        super().__init__(message)
        self.message, self.signum, self.trial_id = message, signum, trial_id

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    @classmethod
    def of(cls, error: BaseException, message: str | None = None, trial_id: int | None = None) -> Interrupted:
        """``error`` (a plain ``KeyboardInterrupt`` is SIGINT) as an :class:`Interrupted`,
        with ``message``/``trial_id`` where given."""
        old = error if isinstance(error, Interrupted) else None
        return cls(message if message is not None else (old.message if old else ""),
                   signum=old.signum if old else 2,
                   trial_id=trial_id if trial_id is not None else (old.trial_id if old else None))


class SourceError(SteplabError, ValueError):
    """An outside training log (TensorBoard, MLflow, CSV) is missing, unreadable or
    malformed: a missing tag or column, steps that go backwards, an empty file, an unknown
    run."""


def read_text_file(path: str | os.PathLike[str], what: str, hint: str) -> str:
    """The UTF-8 text of the file at ``path``. Any failure to read it (missing, a folder, no
    permission, not UTF-8, a NUL in the path) raises one ``SpecError`` line naming ``what``
    the file is (``"algorithm file"``) and ``hint``, the fix (``"give a .toml file"``)."""
    shown = repr(os.fspath(path))
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        raise SpecError(f"{what} {shown} cannot be read: not found; {hint}") from None
    except OSError as e:
        raise SpecError(f"{what} {shown} cannot be read ({e.strerror or e}); {hint}") from None
    except UnicodeDecodeError as e:
        raise SpecError(f"{what} {shown} is not UTF-8 text ({e.reason}); save it as UTF-8") from None
    except ValueError as e:  # a NUL in the path
        raise SpecError(f"{what} {shown} cannot be opened ({e}); fix the path") from None
