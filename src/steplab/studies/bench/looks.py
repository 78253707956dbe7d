"""The looks of a benchmark that adds studies until it is confident (``until_confident``,
``steplab.studies.bench.adaptive``): what each look saw and decided, stored as notes of the
benchmark's study (``Store.add_study_note``), so a killed run resumes with the studies its
looks added and a second worker on the same store follows the same looks."""

from __future__ import annotations

import dataclasses
from typing import Any

from steplab.analysis.sequential import DECISIONS
from steplab.errors import StoreError
from steplab.store import Store
from steplab.studies.bench.planning import Cell


def note_name(look: int) -> str:
    """The study note a look is stored under: ``look-1``, ``look-2``, ..."""
    return f"look-{int(look)}"


@dataclasses.dataclass(frozen=True)
class Look:
    """One look: after ``studies`` studies per deciding cell, at the per-look ``level``
    (``LookPlan.look_level``), the ``top`` algorithm against ``runner_up``; ``p_value`` of
    the permutation test between them; ``separated`` whether the look separated them;
    ``decision`` one of ``analysis.sequential.DECISIONS``; ``added`` the cells of the study
    it added (only when it decided ``continue``)."""

    look: int
    studies: int
    level: float
    top: str
    runner_up: str | None
    p_value: float
    separated: bool
    decision: str
    added: tuple[Cell, ...] = ()

    def __post_init__(self) -> None:
        if self.decision not in DECISIONS:
            raise StoreError(f"look {self.look}: unknown decision {self.decision!r} (one of {', '.join(DECISIONS)})")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["added"] = [list(c) for c in self.added]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Look:
        try:
            return cls(**{**d, "added": tuple((int(s), str(a), str(w)) for s, a, w in d.get("added", ()))})
        except (TypeError, ValueError) as e:
            raise StoreError(f"a stored look of a benchmark is unreadable ({e}); was it written by a newer steplab?") \
                from None

    def summary(self, family_level: float) -> str:
        """One line for people: what the look saw and decided."""
        if self.runner_up is None:
            return f"one algorithm ({self.top}): nothing to separate after {self.studies} studies"
        if self.decision == "separated":
            return (f"separated at {family_level:g} after {self.studies} studies: {self.top} ahead of "
                    f"{self.runner_up} (look {self.look}, per-look level {self.level:.4g}, p = {self.p_value:.3g})")
        head = (f"cap {self.studies} studies reached: still tied" if self.decision == "cap"
                else f"look {self.look} after {self.studies} studies: not separated")
        vs = f"{self.top} vs {self.runner_up}"
        tail = f"; adding study {self.studies + 1} to {len(self.added)} cells" if self.decision == "continue" else ""
        return f"{head} at {family_level:g} ({vs}, per-look level {self.level:.4g}, p = {self.p_value:.3g}){tail}"


def stored_looks(store: Store, study_id: int) -> list[Look]:
    """The looks stored for a benchmark's study, in order (each one's note ``look-K``)."""
    notes = store.study_notes(study_id)
    out: list[Look] = []
    while note_name(len(out) + 1) in notes:
        out.append(Look.from_dict(notes[note_name(len(out) + 1)]))
    return out


def added_cells(looks: list[Look]) -> list[Cell]:
    """Every cell the looks added, in order."""
    return [c for look in looks if look.decision == "continue" for c in look.added]
