"""Find or create a study by name, so running the same spec again resumes it (every study
kind: ``benchmark``, ``tune``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from steplab.errors import SpecError, StoreError
from steplab.store import Store


def open_study(store: Store, name: str, kind: str, spec: Mapping[str, Any]) -> int:
    """The id of the study ``name`` in ``store``, created (of ``kind``, storing ``spec``)
    when absent. A study found with another spec is a ``SpecError``; one found is resumed:
    the trials a killed worker left ``running`` are removed (``Store.reap_stale``: only dead
    claims, so other processes working on the same study keep theirs). Two processes
    creating it at once both get the one study."""
    found = store.find_study(name)
    if found is None:
        try:
            return store.create_study(name, kind, dict(spec))
        except StoreError:  # another process created it at the same moment
            found = store.find_study(name)
            if found is None:
                raise
    if found["spec"] != spec:
        raise SpecError(f"a different {kind} named {name!r} is already in the store; pick another name (--name)")
    study_id = int(found["id"])
    store.reap_stale(study_id)
    return study_id
