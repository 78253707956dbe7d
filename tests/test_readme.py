"""README.md and the docs pages run as written: every command line of their ```bash blocks and
every ```python block, page after page in the order of PAGES (README first, then Getting
started and the tutorials as the site's navigation has them), in one temporary folder, first
with a fresh database and then once more in the same folder, against the database the first
pass filled (trial ids are no longer 1, 2, 3: the pages refer to runs by name).

The budgets shrink through ``STEPLAB_BUDGET_SCALE`` (Getting started says so); commands run
in-process through typer's runner (one import of torch, not fifty). Lines that cannot run
here are in SKIP with the reason; files the pages assume the reader has (a TensorBoard log,
a CSV) are made by FIXTURES. A page that drifts from the code fails here. A later page may
use what an earlier one made (the Recorder's ``rec``, the run ``my-run``), as a reader going
through them in order would have.
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

#: the pages run, in this order (every docs page with a ```bash or ```python block is here)
PAGES = (
    "README.md",
    "docs/getting-started.md",
    "docs/tutorials/benchmark.md",
    "docs/tutorials/workload.md",
    "docs/tutorials/refine.md",
    "docs/tutorials/predict.md",
    "docs/tutorials/tune.md",
    "docs/tutorials/continual.md",
    "docs/tutorials/curricula.md",
    "docs/tutorials/plasticity-optimizers.md",
    "docs/tutorials/plasticity.md",
    "docs/tutorials/dynamics.md",
    "docs/tutorials/integrations.md",
    "docs/tutorials/scale-out.md",
)

#: command lines not run (a prefix each), with the reason: every one is a documented line untested
SKIP = {
    "make demo": "installs and runs the full quick benchmark (minutes); tests/test_bench.py covers bench",
    "make test": "runs this test suite",
    "make docs": "builds the documentation site; tests/test_docs.py builds it",
    "pip install": "installs into the reader's environment; tests/test_package.py installs the wheel",
    "steplab bench examples/bench-quick.toml --ray-address": "needs the reader's Ray cluster",
    "steplab bench examples/bench-quick.toml --ray": "starts a Ray cluster; tests/test_executors.py covers Ray",
    "steplab tune logreg -s asha": "starts Ray Tune; tests/test_tuning_ray.py covers asha",
    "steplab bench examples/bench-quick.toml --db postgresql": "needs the reader's PostgreSQL server",
    "steplab db info --db postgresql": "needs the reader's PostgreSQL server",
    "steplab db upgrade --db old.db": "needs an older steplab's database; tests/test_store.py migrates them",
    "steplab import mlflow": "needs the reader's MLflow run id; tests/test_integrations.py imports MLflow runs",
}


def readme_steps(text: str) -> list[tuple[str, str]]:
    """``[("bash", line) | ("python", block)]`` in the order of one page's ``text``."""
    steps: list[tuple[str, str]] = []
    for lang, body in re.findall(r"^```(bash|python)\n(.*?)^```", text, flags=re.M | re.S):
        if lang == "python":
            steps.append(("python", body))
            continue
        for line in body.replace("\\\n", " ").splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                steps.append(("bash", line.strip()))
    return steps


def page_steps() -> list[tuple[str, str, str]]:
    """``[(page, kind, text)]``: every page's steps, the pages in PAGES order."""
    return [(page, kind, text) for page in PAGES for kind, text in readme_steps((ROOT / page).read_text())]


def skip_entry(line: str) -> str | None:
    """The SKIP prefix that ``line`` starts with (the first in SKIP's order), else None."""
    return next((start for start in SKIP if line.startswith(start)), None)


def make_fixtures(folder: Path) -> None:
    """What the import examples (docs/tutorials/integrations.md) read: a TensorBoard log in runs/exp1 and a W&B-style
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


def run_line(runner: CliRunner, line: str, folder: Path, page: str) -> None:
    words = shlex.split(line, comments=True)
    assert words[0] == "steplab", f"{page}: command that is not steplab: {line!r}; add it to SKIP with a reason"
    target = None
    if ">" in words:
        at = words.index(">")
        words, target = words[:at], words[at + 1]
    r = runner.invoke(app, words[1:])
    assert r.exit_code == 0, f"{page}: line failed (exit {r.exit_code}): {line}\n{r.output[-3000:]}"
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
    """Run every step of the pages in ``folder``; return the skipped lines."""
    runner = CliRunner()
    namespace: dict[str, object] = {"__name__": "__readme__"}
    skipped, took = [], []
    for page, kind, text in page_steps():
        t0 = time.perf_counter()
        if kind == "python" and (missing := _missing_extra(text)):
            skipped.append(f"python block needing {missing} ({page})")
        elif kind == "python":
            exec(compile(text, f"{page} python block", "exec"), namespace)  # noqa: S102
        elif skip_entry(text) is not None:
            skipped.append(text)
        else:
            run_line(runner, text, folder, page)
        took.append((time.perf_counter() - t0, f"{page}: {text.splitlines()[0][:80]}"))
    print("slowest steps:", *(f"{s:6.1f} s  {t}" for s, t in sorted(took, reverse=True)[:12]), sep="\n")
    print(f"all {len(took)} steps: {sum(s for s, _ in took):.1f} s")
    return skipped


@pytest.mark.slow
def test_readme_and_docs_run_as_written_in_a_fresh_and_in_a_used_database(tmp_path, monkeypatch):
    pytest.importorskip("tensorboard", reason="the TensorBoard log imported is written with the tensorboard extra")
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    make_fixtures(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STEPLAB_BUDGET_SCALE", SCALE)
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    skipped = run_readme(tmp_path)
    bash_skipped = [line for line in skipped if not line.startswith("python block")]
    assert {skip_entry(line) for line in bash_skipped} == set(SKIP), bash_skipped  # every entry skips a line
    if len(skipped) > len(bash_skipped):
        warnings.warn(f"python blocks not run, their extra is missing: {skipped}", stacklevel=1)
    with sqlite3.connect(tmp_path / "steplab.db") as conn:
        first = conn.execute("SELECT count(*) FROM trials").fetchone()[0]
    assert first > 10
    run_readme(tmp_path)  # the same commands against the database the first pass filled
    with sqlite3.connect(tmp_path / "steplab.db") as conn:
        rows = conn.execute("SELECT status FROM trials").fetchall()
        named = dict(conn.execute("SELECT name, count(*) FROM trials WHERE name IN "
                                  "('hello', 'first', 'linear', 'const', 'cos', 'split', 'rotated', 'shift', 'exp1', "
                                  "'history.csv', 'my-run') GROUP BY name").fetchall())
    assert len(rows) > first and all(s != "running" for (s,) in rows), rows
    # every named run was recorded again by the second pass, so the names point at new runs
    assert named == dict.fromkeys(("hello", "first", "linear", "const", "cos", "split", "rotated", "shift", "exp1",
                                   "history.csv", "my-run"), 2), named


def test_every_skip_names_a_documented_line():
    lines = [line for _, kind, line in page_steps() if kind == "bash"]
    for start in SKIP:
        assert any(line.startswith(start) for line in lines), f"SKIP entry {start!r} matches no line of PAGES"


def test_every_docs_page_with_commands_is_run():
    """A page with a ```bash or ```python block is in PAGES, so its commands are tested."""
    pages = ["README.md", *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").rglob("*.md"))]
    with_steps = [p for p in pages if readme_steps((ROOT / p).read_text())]
    assert sorted(with_steps) == sorted(PAGES), (with_steps, PAGES)


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
    """What lets the pages name their runs: digits are an id, a name the newest trial so named."""
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
