"""What ``benchmarks/scaling.py`` made fast stays right: the bulk reads of the store equal
the per-trial ones, and the commands that do not train start without torch (issue 22)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

from steplab.results import TrialResult, TrialSpec
from steplab.store import Store, open_store


def _spec(i: int, study_id: int | None, workload: str) -> TrialSpec:
    return TrialSpec(workload, "base", "mine", {"name": "mine", "lr": 1e-3 * (i + 1)}, {"lr": 1e-3 * (i + 1)},
                     seed=i, budget_steps=10, study_id=study_id, index=i)


def _fill(store: Store, *, name_all: bool = False) -> list[int]:
    """9 trials over two studies and two workloads; odd ones named (or all), one left running."""
    study = store.create_study("s", "benchmark", {})
    ids = []
    for i in range(9):
        spec = _spec(i, study if i % 3 else None, "logreg" if i % 2 else "digits-mlp")
        tid = store.start_trial(spec, name=f"run-{i}" if i % 2 or name_all else None)
        if i != 4:
            store.finish_trial(tid, TrialResult(spec, "reached", 10, 0.5, 0.1, 0.4, 8.0,
                                                final_metrics={"time/s_per_step": 0.05}))
        ids.append(tid)
    return ids


def test_bulk_reads_equal_the_per_trial_ones(tmp_path: Path) -> None:
    with open_store(tmp_path / "s.db") as store:
        ids = _fill(store)
        infos = store.trial_infos([*ids, ids[0], 10_000])  # a repeat and an unknown id
        assert infos == {i: store.trial_info(i) for i in ids}
        assert [infos[i]["name"] for i in ids] == [None if i % 2 == 0 else f"run-{i}" for i in range(9)]
        study = store.list_studies()[0]["id"]
        for filters in ({}, {"study_id": study}, {"workload": "logreg"}, {"status": "reached"}):
            every = store.list_trials(**filters)
            for n in (1, 3, len(every), len(every) + 5):
                assert store.list_trials(**filters, last=n) == every[-n:]
            assert store.list_trials(**filters, last=0) == []


def test_runs_list_limit_reads_the_newest(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from steplab.cli import app

    db = tmp_path / "s.db"
    with open_store(db) as store:
        _fill(store, name_all=True)  # named: their labels need no built-in algorithms (torch)
    for limit, shown in (("3", {6, 7, 8}), ("0", set(range(9)))):
        out = CliRunner().invoke(app, ["runs", "list", "--db", str(db), "--limit", limit])
        assert out.exit_code == 0, out.output
        assert {i for i in range(9) if f" run-{i} " in out.stdout} == shown
        assert f"{len(shown)} trial(s)" in out.stdout


_PROBE = """
import sys
from steplab.cli import app
codes = []
for args in (["--help"], ["runs", "list", "--db", sys.argv[1]]):
    try:
        app(args)
    except SystemExit as e:
        codes.append(e.code)
print("TORCH", "torch" in sys.modules, "NUMPY", "numpy" in sys.modules, "CODES", codes, file=sys.stderr)
"""


def test_commands_that_do_not_train_start_without_torch(tmp_path: Path) -> None:
    """``steplab --help`` and ``steplab runs list`` of named runs (a named run's label is
    its name: nothing is compared with a built-in algorithm) import neither torch nor numpy."""
    db = tmp_path / "s.db"
    with open_store(db) as store:
        spec = _spec(0, None, "logreg")
        store.finish_trial(store.start_trial(spec, name="hello"),
                           TrialResult(spec, "budget", 10, 0.5, 0.1, final_metrics={"train/loss": math.pi}))
    out = subprocess.run([sys.executable, "-c", _PROBE, str(db)], capture_output=True, text=True, timeout=60)
    assert "hello" in out.stdout
    assert out.stderr.strip().splitlines()[-1] == "TORCH False NUMPY False CODES [0, 0]"
