"""Output that survives a pipe and output for programs (issue 27, items 1 and 3): tables never
cut a name, ``algorithms show`` is valid TOML at any width, ``--json``/``--csv`` parse with
real values, and runs with different settings get different labels."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from steplab.cli import app

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

runner = CliRunner()
NARROW = {"COLUMNS": "40"}


def ok(*args: str, env: dict[str, str] | None = None) -> str:
    r = runner.invoke(app, list(args), env=env or NARROW)
    assert r.exit_code == 0, (args, r.output)
    return r.stdout


def as_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


# ---------------------------------------------------------------------------------- TOML
def test_algorithms_show_is_valid_toml_for_every_builtin_at_any_width(tmp_path):
    from steplab import algorithms

    names = algorithms.algorithm_names()
    assert len(names) >= 19
    for name in names:  # CliRunner: stdout is not a terminal, COLUMNS=40
        text = ok("algorithms", "show", name)
        tomllib.loads(text)
        assert algorithms.from_toml(text) == algorithms.get_algorithm(name)
    # a real pipe, in one process: every algorithm's TOML between separator lines
    code = ("import sys\nfrom steplab.cli import app\nfor n in sys.argv[1:]:\n"
            "    try:\n        app(['algorithms', 'show', n])\n    except SystemExit:\n        pass\n"
            "    sys.stdout.write('#----\\n')\n")
    out = subprocess.run([sys.executable, "-c", code, *names], capture_output=True, text=True, check=True,
                         env={**os.environ, "COLUMNS": "40"}).stdout
    texts = out.split("#----\n")[:-1]
    assert [tomllib.loads(t)["name"] for t in texts] == names
    assert max(len(line) for line in out.splitlines()) > 40  # long descriptions stay on one line
    # the README's next line: the saved file runs, with an override cosine has
    (tmp_path / "mine.toml").write_text(texts[names.index("adamw-cosine")])
    ok("run", "logreg", "--algorithm", str(tmp_path / "mine.toml"), "--set", "lr=2e-3",
       "--set", "schedule.warmup=0.1", "--steps", "5", "--db", str(tmp_path / "t.db"))


def test_algorithms_show_json():
    d = json.loads(ok("algorithms", "show", "adamw-wsd", "--json"))
    assert d["name"] == "adamw-wsd" and d["schedule"]["name"] == "wsd" and d["lr"] == 0.003


# ---------------------------------------------------------------------------------- width
def test_piped_help_keeps_option_names_whole():
    code = "from steplab.cli import app\ntry:\n    app(['run', '--help'])\nexcept SystemExit:\n    pass\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "COLUMNS": "60"}).stdout
    for option in ("--train-eval-batches", "--no-stop-at-target", "--weight-decay", "--algorithm"):
        assert option in out
    assert "…" not in out


def test_listings_are_never_cut_when_piped():
    from steplab import algorithms, schedules, workloads

    text = ok("algorithms", "list")
    assert "…" not in text and all(f" {n} " in text for n in algorithms.algorithm_names())
    text = ok("workloads", "list")
    assert "…" not in text and all(f" {n} " in text for n in workloads.names())
    text = ok("schedules", "list")
    assert "…" not in text and all(f" {n} " in text for n in schedules.names())


def test_narrow_terminal_folds_names_instead_of_cutting(monkeypatch):
    from steplab.cli import common

    buf = io.StringIO()
    monkeypatch.setattr(common, "console", common.PipeSafeConsole(file=buf, width=60, force_terminal=True))
    from steplab.cli import algorithms as cli_algorithms

    monkeypatch.setattr(cli_algorithms, "console", common.console)
    cli_algorithms.algorithms_list.__wrapped__(as_json=False, as_csv=False)  # type: ignore[attr-defined]
    text = re.sub(r"\x1b\[[0-9;]*m", "", buf.getvalue())
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 60
    assert "adamw" in text  # folded onto several lines, not cut


def test_hint_is_one_line_at_any_width(monkeypatch):
    from steplab.cli import common

    buf = io.StringIO()
    monkeypatch.setattr(common, "console", common.PipeSafeConsole(file=buf, width=30, force_terminal=True))
    command = "  next: steplab run logreg -a adamw-cosine --set lr=0.0123456 --set weight_decay=0.00123"
    common.hint(command)
    assert buf.getvalue() == command + "\n"


def test_pipe_width_is_wide_but_a_terminal_keeps_its_own():
    from steplab.cli.common import PIPE_WIDTH, PipeSafeConsole

    assert PipeSafeConsole(file=io.StringIO()).width == PIPE_WIDTH
    assert PipeSafeConsole(file=io.StringIO(), width=50).width == 50


def test_json_and_csv_together_is_one_line_error():
    r = runner.invoke(app, ["workloads", "list", "--json", "--csv"])
    assert r.exit_code == 2 and "--json and --csv" in r.output and "Traceback" not in r.output


# ---------------------------------------------------------------------------------- listings as data
def test_static_listings_parse_as_json_and_csv():
    from steplab import algorithms, schedules, workloads

    algos = json.loads(ok("algorithms", "list", "--json"))
    assert [a["name"] for a in algos] == algorithms.algorithm_names()
    cos = next(a for a in algos if a["name"] == "adamw-cosine")
    assert cos["lr"] == 0.003 and cos["weight_decay"] == 0.05 and cos["schedule"] == {"name": "cosine", "warmup": 0.05}
    rows = as_csv(ok("algorithms", "list", "--csv"))
    assert [r["name"] for r in rows] == algorithms.algorithm_names()
    assert next(r for r in rows if r["name"] == "adamw-cosine")["schedule"] == "cosine:warmup=0.05"

    wl = json.loads(ok("workloads", "list", "--json"))
    assert [w["name"] for w in wl] == workloads.names()
    logreg = next(w for w in wl if w["name"] == "logreg")
    target = workloads.get("logreg").target
    assert logreg["target_metric"] == target.metric and logreg["target_value"] == target.value
    assert logreg["budget_steps"] == workloads.get("logreg").budget_steps
    rows = as_csv(ok("workloads", "list", "--csv"))
    assert float(next(r for r in rows if r["name"] == "logreg")["target_value"]) == target.value

    sch = json.loads(ok("schedules", "list", "--json"))
    assert [s["name"] for s in sch] == schedules.names()
    assert next(s for s in sch if s["name"] == "wsd")["parameters"]["decay"] == schedules.info("wsd").params["decay"].default
    rows = as_csv(ok("schedules", "list", "--csv"))
    assert "decay" in next(r for r in rows if r["name"] == "wsd")["parameters"].split(",")


# ---------------------------------------------------------------------------------- runs, labels
@pytest.fixture(scope="module")
def db(tmp_path_factory):
    """Three runs of logreg that differ (defaults lr 1e-3, the built-in at lr 3e-3, a TOML
    named ``mine``), a Recorder run named ``my-run`` and a small tune."""
    import torch

    from steplab import Recorder, algorithms

    folder = tmp_path_factory.mktemp("output")
    path = str(folder / "o.db")
    toml = algorithms.get_algorithm("adamw-cosine").to_toml().replace('name = "adamw-cosine"', 'name = "mine"')
    (folder / "mine.toml").write_text(toml)
    for extra in ([], ["-a", "adamw-cosine", "--lr", "3e-3"], ["-a", str(folder / "mine.toml")]):
        ok("run", "logreg", *extra, "--steps", "10", "--db", path)
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    rec = Recorder(opt, db=path, name="my-run", config={"lr": 0.1})
    for _ in range(3):
        loss = model(torch.ones(4, 3)).pow(2).mean()
        loss.backward()
        opt.step()
        opt.zero_grad()
        rec.log(loss)
    rec.close()
    return path


def test_runs_are_told_apart_by_their_labels(db):
    text = ok("runs", "list", "--db", db)
    for label in ("adamw-cosine lr=0.001 wd=0", "mine lr=0.003", "my-run"):
        assert label in text
    assert "…" not in text
    records = json.loads(ok("runs", "list", "--db", db, "--json"))
    assert [r["label"] for r in records] == ["adamw-cosine lr=0.001 wd=0", "adamw-cosine", "mine lr=0.003", "my-run"]
    assert len({r["label"] for r in records}) == 4
    assert records[0]["differs"] == {"lr": 0.001, "wd": 0.0} and records[1]["differs"] == {}
    assert records[3]["name"] == "my-run" and records[3]["workload"] == "user" and records[3]["algorithm"] == "SGD"
    assert [r["id"] for r in records] == [1, 2, 3, 4] and records[0]["steps"] == 10
    assert records[0]["steps_to_target"] is None  # inf (not reached) is null
    assert isinstance(records[0]["final_metrics"]["validation/loss"], float)


def test_runs_list_csv_and_show_json(db):
    rows = as_csv(ok("runs", "list", "--db", db, "--csv"))
    assert [r["id"] for r in rows] == ["1", "2", "3", "4"]
    assert rows[0]["label"] == "adamw-cosine lr=0.001 wd=0" and rows[0]["differs"] == "lr=0.001 wd=0"
    assert rows[0]["steps_to_target"] == "" and float(rows[0]["validation/loss"]) > 0
    shown = json.loads(ok("runs", "show", "1", "--db", db, "--json"))
    assert shown["id"] == 1 and shown["label"] == "adamw-cosine lr=0.001 wd=0"
    assert shown["config"]["algorithm_spec"]["lr"] == 0.001 and shown["trace_rows"] == 10
    assert all(e["metric"].startswith("validation/") for e in shown["evals"]) and shown["evals"]
    assert "adamw-cosine lr=0.001 wd=0" in ok("runs", "show", "1", "--db", db)


def test_run_report_labels_and_data(db):
    text = ok("report", "--trial", "1", "--trial", "3", "--trial", "4", "--db", db)
    assert "adamw-cosine lr=0.001 wd=0" in text and "mine lr=0.003" in text and "my-run" in text
    data = json.loads(ok("report", "--trial", "1", "--trial", "4", "--db", db, "--json"))
    assert [d["id"] for d in data] == [1, 4] and data[1]["label"] == "my-run" and data[0]["steps"] == 10
    assert data[0]["lr_max"] == pytest.approx(0.001)
    rows = as_csv(ok("report", "--trial", "1", "--trial", "3", "--db", db, "--csv"))
    assert [r["label"] for r in rows] == ["adamw-cosine lr=0.001 wd=0", "mine lr=0.003"]
    assert float(rows[1]["lr_max"]) == pytest.approx(0.003)


def test_tune_json_and_csv(db):
    args = ["tune", "logreg", "-s", "qmc", "--budget", "30", "--trial-steps", "10", "--evals", "2",
            "--params", "lr", "--db", db]
    data = json.loads(ok(*args, "--json"))
    assert data["steps_used"] == 30 and len(data["trials"]) == 3
    best = data["best"]
    assert sum(t["best"] for t in data["trials"]) == 1 and best["next"].startswith("steplab run logreg -a adamw-cosine --set lr=")
    values = [t["validation/loss"] for t in data["trials"]]
    assert best["value"] == min(values)
    rows = as_csv(ok(*args, "--csv"))  # the same tune again: resumed, same trials
    assert [float(r["lr"]) for r in rows] == pytest.approx([t["lr"] for t in data["trials"]])


def test_db_info_json(db):
    info = json.loads(ok("db", "info", "--db", db, "--json"))
    assert info["backend"] == "sqlite" and info["schema_version"] == info["steplab_schema"]
    assert sum(info["trials"].values()) >= 4
