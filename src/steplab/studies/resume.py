"""Find or create a study by name, so running the same spec again resumes it (every study
kind: ``benchmark``, ``tune``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from steplab.errors import SpecError, StoreError, WorkloadError
from steplab.store import Store


def open_study(store: Store, name: str, kind: str, spec: Mapping[str, Any]) -> int:
    """The id of the study ``name`` in ``store``, created (of ``kind``, storing ``spec``)
    when absent. A study found with another spec is a ``SpecError``; one found is resumed:
    the trials a killed worker left ``running`` are removed (``Store.reap_stale``: only dead
    claims, so other processes working on the same study keep theirs). Two processes
    creating it at once both get the one study. A study whose trials ran another version of
    a workload file is refused before anything is written (:func:`check_workload_sources`)."""
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
    check_workload_sources(store, study_id, f"{kind} {name!r}")
    store.reap_stale(study_id)
    return study_id


def check_workload_sources(store: Store, study_id: int, what: str) -> None:
    """Refuse to resume a study whose trials ran a workload loaded by reference
    (``path/file.py:Class``, :mod:`steplab.workloads.references`) from a source that
    differs from the one this process loads now: its stored ``settings["workload_sha256"]``
    names the version each trial ran, and results of two versions must not be mixed.
    One ``WorkloadError`` line names the file and the first trial that ran another version."""
    from steplab.workloads import references

    for trial in store.list_trials(study_id=study_id):
        stored = trial.spec.settings.get("workload_sha256")
        if stored is None or not references.is_reference(trial.spec.workload):
            continue
        now = references.source_sha256(trial.spec.workload)
        if now != stored:
            ref = references.parse(trial.spec.workload)
            source = ref.location if ref.kind == "file" else f"the file of module {ref.location}"
            raise WorkloadError(
                f"{source} changed since trial {trial.id} of {what} ran it (sha256 {stored[:12]} then, "
                f"{(now or 'none')[:12]} now): restore it to resume, or run the changed workload as a new "
                "study (--name NEW_NAME)")
