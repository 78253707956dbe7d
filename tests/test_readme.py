"""README.md runs as written: every command line of its ```bash blocks and every ```python
block, in order, in a temporary folder, first with a fresh database and then once more in
the same folder, against the database the first pass filled (trial ids are no longer 1, 2,
3: the README refers to runs by name).

The budgets shrink through ``STEPLAB_BUDGET_SCALE`` (the README says so); commands run
in-process through typer's runner (one import of torch, not fifty). Lines that cannot run
here are in SKIP with the reason; files the README assumes the reader has (a TensorBoard
log, a CSV) are made by FIXTURES. A README that drifts from the code fails here.
"""

from __future__ import annotations

import csv
import importlib.util
import os
import re
import shlex
import shutil
import sqlite3
import time
import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

from steplab.cli import app

ROOT = Path(__file__).resolve().parent.parent
SCALE = "0.01"

#: README command lines not run, each with the reason (every one is a README line untested)
SKIP = {
    "make demo": "installs and runs the full quick benchmark (minutes); tests/test_bench.py covers bench",
    "make test": "runs this test suite",
    "steplab bench examples/bench-quick.toml --ray": "starts a Ray cluster; tests/test_executors.py covers Ray",
    "steplab tune logreg -s asha": "starts Ray Tune; tests/test_tuning_ray.py covers asha",
    "steplab bench examples/bench-quick.toml --db postgresql": "needs the reader's PostgreSQL server",
    "steplab db info --db postgresql": "needs the reader's PostgreSQL server",
    "steplab db upgrade --db old.db": "needs an older steplab's database; tests/test_store.py migrates them",
    "steplab import mlflow": "needs the reader's MLflow run id; tests/test_integrations.py imports MLflow runs",
}


def readme_steps(text: str) -> list[tuple[str, str]]:
    """``[("bash", line) | ("python", block)]`` in README order."""
    steps: list[tuple[str, str]] = []
    for lang, body in re.findall(r"^```(bash|python)\n(.*?)^```", text, flags=re.M | re.S):
        if lang == "python":
            steps.append(("python", body))
            continue
        for line in body.replace("\\\n", " ").splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                steps.append(("bash", line.strip()))
    return steps


def skip_reason(line: str) -> str | None:
    return next((why for start, why in SKIP.items() if line.startswith(start)), None)


def make_fixtures(folder: Path) -> None:
    """What the README's import examples read: a TensorBoard log in runs/exp1 and a W&B-style
    history.csv (16 updates of a decaying loss, lr and gradient norm)."""
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(folder / "runs" / "exp1")) as w:
        for k in range(16):
            w.add_scalar("train/loss", 2.0 / (1 + 0.2 * k), k)
            w.add_scalar("lr", 1e-3 * (1 - k / 16), k)
            w.add_scalar("grad_norm", 1.0 / (1 + 0.1 * k), k)
    with open(folder / "history.csv", "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["_step", "train/loss", "lr", "grad_norm", "val_loss", "_runtime"])
        for k in range(16):
            out.writerow([k, 2.0 / (1 + 0.2 * k), 1e-3 * (1 - k / 16), 1.0 / (1 + 0.1 * k),
                          "" if k % 4 else 2.1 / (1 + 0.2 * k), 0.1 * k])


def run_line(runner: CliRunner, line: str, folder: Path) -> None:
    words = shlex.split(line, comments=True)
    assert words[0] == "steplab", f"README command that is not steplab: {line!r}; add it to SKIP with a reason"
    target = None
    if ">" in words:
        at = words.index(">")
        words, target = words[:at], words[at + 1]
    r = runner.invoke(app, words[1:])
    assert r.exit_code == 0, f"README line failed (exit {r.exit_code}): {line}\n{r.output[-3000:]}"
    if target is not None:
        (folder / target).write_text(r.stdout)


def _missing_extra(block: str) -> str | None:
    """The optional extra a Python block imports that is not installed (``make test``
    installs them all; ``.ci/run`` runs it)."""
    for module in re.findall(r"^(?:import|from) (lightning|transformers)\b", block, flags=re.M):
        if importlib.util.find_spec(module) is None:
            return module
    return None


def run_readme(folder: Path) -> list[str]:
    """Run every README step in ``folder``; return the skipped lines."""
    runner = CliRunner()
    namespace: dict[str, object] = {"__name__": "__readme__"}
    skipped, took = [], []
    for kind, text in readme_steps((ROOT / "README.md").read_text()):
        t0 = time.perf_counter()
        if kind == "python" and (missing := _missing_extra(text)):
            skipped.append(f"python block needing {missing}")
        elif kind == "python":
            exec(compile(text, "README.md python block", "exec"), namespace)  # noqa: S102
        elif skip_reason(text) is not None:
            skipped.append(text)
        else:
            run_line(runner, text, folder)
        took.append((time.perf_counter() - t0, text.splitlines()[0][:90]))
    print("slowest README steps:", *(f"{s:6.1f} s  {t}" for s, t in sorted(took, reverse=True)[:12]), sep="\n")
    return skipped


@pytest.mark.slow
def test_readme_runs_as_written_in_a_fresh_and_in_a_used_database(tmp_path, monkeypatch):
    pytest.importorskip("tensorboard", reason="the README's TensorBoard log is written with the tensorboard extra")
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    make_fixtures(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STEPLAB_BUDGET_SCALE", SCALE)
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    skipped = run_readme(tmp_path)
    bash_skipped = [line for line in skipped if not line.startswith("python block")]
    assert len(bash_skipped) == len(SKIP), bash_skipped  # one README line per entry
    if len(skipped) > len(bash_skipped):
        warnings.warn(f"README blocks not run, their extra is missing: {skipped}", stacklevel=1)
    with sqlite3.connect(tmp_path / "steplab.db") as conn:
        first = conn.execute("SELECT count(*) FROM trials").fetchone()[0]
    assert first > 10
    run_readme(tmp_path)  # the same commands against the database the first pass filled
    with sqlite3.connect(tmp_path / "steplab.db") as conn:
        rows = conn.execute("SELECT status FROM trials").fetchall()
        named = dict(conn.execute("SELECT name, count(*) FROM trials WHERE name IN "
                                  "('first', 'linear', 'const', 'cos', 'split', 'rotated', 'shift', 'exp1', "
                                  "'history.csv', 'my-run') GROUP BY name").fetchall())
    assert len(rows) > first and all(s != "running" for (s,) in rows), rows
    # every named run was recorded again by the second pass, so the names point at new runs
    assert named == dict.fromkeys(("first", "linear", "const", "cos", "split", "rotated", "shift", "exp1",
                                   "history.csv", "my-run"), 2), named


def test_every_skip_names_a_readme_line():
    lines = [line for kind, line in readme_steps((ROOT / "README.md").read_text()) if kind == "bash"]
    for start in SKIP:
        assert any(line.startswith(start) for line in lines), f"SKIP entry {start!r} matches no README line"


def test_budget_scale_is_read_and_checked(monkeypatch):
    from steplab import workloads
    from steplab.errors import WorkloadError

    monkeypatch.setenv("STEPLAB_BUDGET_SCALE", "0.1")
    assert workloads.get("logreg").budget_steps == 50
    assert workloads.get("logreg").eval_every == 12  # a scaled run evaluates 4 times
    assert workloads.get("logreg", budget_steps=20).budget_steps == 16  # never below 16 steps
    assert workloads.get("charlm", budget_steps=1000).budget_steps == 100
    stream = workloads.get("stream", "charlm-shift")  # eval every 10: per task a multiple of 10
    assert stream.budget_steps == 80 and stream.stream.stage_ends() == [40, 80]
    monkeypatch.setenv("STEPLAB_BUDGET_SCALE", "2")
    with pytest.raises(WorkloadError, match="STEPLAB_BUDGET_SCALE"):
        _ = workloads.get("logreg").budget_steps
    monkeypatch.delenv("STEPLAB_BUDGET_SCALE")
    assert workloads.get("logreg").budget_steps == 500 and os.environ.get("STEPLAB_BUDGET_SCALE") is None


def test_a_name_means_the_newest_trial_with_it(tmp_path):
    """What lets the README name its runs: digits are an id, a name the newest trial so named."""
    from steplab.cli.refs import trial_id, trial_ids
    from steplab.errors import StoreError
    from steplab.results import StepRow, TrialResult, TrialSpec
    from steplab.store import open_store

    spec = TrialSpec("user", "csv", "x", {}, {}, 0, 2, stop_at_target=False)
    with open_store(tmp_path / "s.db") as store:
        ids = [store.import_trial(TrialResult(spec, "budget", 2, 0.0, 0.0), [StepRow(0, 0.0, 0.1, 1.0)], name=n)
               for n in ("base", "other", "base")]
        assert trial_id(store, "base") == ids[2] and trial_id(store, "other") == ids[1]
        assert trial_ids(store, ["1", " base "]) == [1, ids[2]]
        with pytest.raises(StoreError, match="no trial is named 'nosuch'"):
            trial_id(store, "nosuch")
    r = CliRunner().invoke(app, ["runs", "show", "other", "--db", str(tmp_path / "s.db")])
    assert r.exit_code == 0 and f"trial {ids[1]}" in r.output, r.output
