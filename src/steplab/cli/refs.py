"""Trial references on the command line: a trial id, or a name.

``steplab run ... --name base`` (or an import, whose trial is named after its folder, file
or run) and then ``steplab refine base``: a name means the newest trial with that name, so
a command line that names its runs points at the right ones in a database that already
holds runs (trial ids depend on what the database held before).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from steplab.store import Store

TRIAL_HELP = "Trial id, or name (the newest trial with that name; steplab runs list)."


def trial_id(store: Store, ref: str | int) -> int:
    """The id ``ref`` names: digits are an id, any other text the newest trial named so."""
    from steplab.errors import StoreError

    text = str(ref).strip()
    if text.isdigit():
        return int(text)
    named = store.list_trials(name=text)
    if not named:
        raise StoreError(f"no trial is named {text!r}; pass a trial id or a name from `steplab runs list`")
    return int(named[-1].id)  # type: ignore[arg-type]


def trial_ids(store: Store, refs: Sequence[str | int]) -> list[int]:
    """:func:`trial_id` of each reference, in order."""
    return [trial_id(store, r) for r in refs]
