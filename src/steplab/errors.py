"""One exception family per kind of failure (DESIGN.md, "Conventions").

Every message is one line that names the problem and the fix. The CLI prints it without a
traceback and exits non-zero.
"""


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


class SourceError(SteplabError, ValueError):
    """An outside training log (TensorBoard, MLflow, CSV) is missing, unreadable or
    malformed: a missing tag or column, steps that go backwards, an empty file, an unknown
    run."""
