"""The CLI through typer's runner."""

from __future__ import annotations

from typer.testing import CliRunner

from steplab import __version__
from steplab.cli import app

runner = CliRunner()


def test_version():
    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and __version__ in r.output


def test_schedules_list_names_every_schedule():
    r = runner.invoke(app, ["schedules", "list"], env={"COLUMNS": "200"})
    assert r.exit_code == 0
    for name in ("wsd", "rex", "onecycle", "inverse_sqrt", "piecewise", "triangular2"):
        assert name in r.output


def test_schedules_plot_writes_png(tmp_path):
    out = tmp_path / "s.png"
    r = runner.invoke(app, ["schedules", "plot", "wsd", "cosine:end=0.1", "rex", "--steps", "500", "--out", str(out)])
    assert r.exit_code == 0, r.output
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_unknown_schedule_is_one_line_error(tmp_path):
    r = runner.invoke(app, ["schedules", "plot", "nosuch", "--out", str(tmp_path / "x.png")])
    assert r.exit_code != 0
    lines = [ln for ln in r.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "nosuch" in lines[0] and "Traceback" not in r.output
    assert not (tmp_path / "x.png").exists()


def test_bad_parameter_is_one_line_error(tmp_path):
    r = runner.invoke(app, ["schedules", "plot", "wsd:decay=2", "--out", str(tmp_path / "x.png")])
    assert r.exit_code != 0 and "decay" in r.output and "Traceback" not in r.output


def test_run_runs_and_show(tmp_path):
    db = str(tmp_path / "c.db")
    r = runner.invoke(app, ["run", "logreg", "--lr", "0.03", "--schedule", "cosine:warmup=0.05", "--steps", "100",
                            "--no-stop-at-target", "--db", db])
    assert r.exit_code in (0,), r.output
    assert "trial 1" in r.output
    r = runner.invoke(app, ["runs", "list", "--db", db], env={"COLUMNS": "200"})
    assert r.exit_code == 0 and "logreg" in r.output
    png = tmp_path / "t.png"
    r = runner.invoke(app, ["runs", "show", "1", "--db", db, "--plot", str(png)])
    assert r.exit_code == 0 and png.read_bytes()[:4] == b"\x89PNG"
    r = runner.invoke(app, ["runs", "show", "99", "--db", db])
    assert r.exit_code != 0 and "99" in r.output and "Traceback" not in r.output


def test_run_divergence_exits_nonzero_without_traceback(tmp_path):
    r = runner.invoke(app, ["run", "logreg", "--lr", "1e4", "--db", str(tmp_path / "d.db")])
    assert r.exit_code == 1 and "diverged" in r.output and "Traceback" not in r.output


def test_unknown_workload_and_corrupt_db(tmp_path):
    r = runner.invoke(app, ["run", "nope", "--db", str(tmp_path / "x.db")])
    assert r.exit_code == 2 and "unknown workload" in r.output
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    before = bad.read_bytes()
    r = runner.invoke(app, ["runs", "list", "--db", str(bad)])
    assert r.exit_code == 2 and "Traceback" not in r.output and bad.read_bytes() == before


def test_listings():
    for cmd in (["workloads", "list"], ["algorithms", "list"], ["algorithms", "show", "adamw-cosine"], ["algorithms", "optimizers"]):
        r = runner.invoke(app, cmd, env={"COLUMNS": "200"})
        assert r.exit_code == 0, (cmd, r.output)
    r = runner.invoke(app, ["algorithms", "show", "nope"])
    assert r.exit_code == 2


def test_bench_and_report(tmp_path):
    db = str(tmp_path / "b.db")
    html = tmp_path / "r.html"
    args = ["bench", "--workloads", "logreg", "--algorithms", "adamw-cosine,sgd-nesterov-cosine", "--trials", "1",
            "--db", db, "--html", str(html)]
    r = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "ranking" in r.output and html.exists()
    r = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert "2 already done, 0 to run" in r.output
    r = runner.invoke(app, ["report", "--db", db, "--html", str(tmp_path / "r2.html")], env={"COLUMNS": "200"})
    assert r.exit_code == 0 and (tmp_path / "r2.html").exists()
    # for programs: the same numbers as JSON and CSV ("wrote" goes to stderr, stdout parses)
    import csv
    import io
    import json

    r = runner.invoke(app, ["report", "--db", db, "--json", "--html", str(tmp_path / "r3.html")])
    data = json.loads(r.stdout)
    assert data["study_id"] == 1 and {row["algorithm"] for row in data["ranking"]} == {"adamw-cosine", "sgd-nesterov-cosine"}
    assert data["ranking"][0]["score_time"] >= data["ranking"][1]["score_time"] and data["profile"]["tau"][0] == 1.0
    per = data["per_workload"]
    assert {p["workload"] for p in per} == {"logreg"} and min(p["ratio_time"] for p in per if p["ratio_time"]) == 1.0
    rows = list(csv.DictReader(io.StringIO(runner.invoke(app, ["report", "--db", db, "--csv"]).stdout)))
    assert [(row["workload"], row["algorithm"]) for row in rows] == [(p["workload"], p["algorithm"]) for p in per]
    assert [float(row["steps"]) if row["steps"] else None for row in rows] == [p["steps"] for p in per]


def test_runs_show_prints_the_whole_stored_config(tmp_path):
    import dataclasses

    from steplab.results import TrialSpec

    db = str(tmp_path / "c.db")
    r = runner.invoke(app, ["run", "logreg", "--lr", "0.03", "--steps", "20", "--seed", "3", "--no-stop-at-target",
                            "--db", db])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["runs", "show", "1", "--db", db], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    config = r.output.split("\nconfig\n", 1)[1].splitlines()
    assert config == sorted(config)
    for line in ("seed = 3", "budget_steps = 20", "stop_at_target = false", "workload = logreg",
                 "algorithm_spec.lr = 0.03", "algorithm_spec.schedule.name = cosine", "hyperparameters = {}"):
        assert f"  {line}" in config, line
    for field in dataclasses.fields(TrialSpec):  # a field added to the record shows without CLI changes
        assert any(ln.startswith((f"  {field.name} = ", f"  {field.name}.")) for ln in config), field.name


def test_config_lines_flatten_nested_settings():
    from steplab.cli.runs import config_lines

    config = {"seed": 0, "name": "a b", "spec": {"lr": 0.5, "schedule": {"name": "wsd"}, "kw": {}}, "steps": [1, 2]}
    assert config_lines(config) == ["name = a b", "seed = 0", "spec.kw = {}", "spec.lr = 0.5",
                                    "spec.schedule.name = wsd", "steps = [1, 2]"]


def test_help_starts_without_the_heavy_stacks():
    import subprocess
    import sys

    code = ("import sys\nfrom steplab.cli import app\ntry:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = {'torch', 'numpy', 'optuna', 'ray', 'matplotlib', 'sqlalchemy'}\n"
            "print('HEAVY', sorted(heavy & {m.split('.')[0] for m in sys.modules}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out and "continual" in out


def test_continual_buffer_flag_is_checked_before_training(tmp_path):
    r = runner.invoke(app, ["continual", "split-digits", "--buffer", "lots", "--db", str(tmp_path / "c.db")])
    assert r.exit_code == 2 and "--buffer takes a number of examples or `all`" in r.output
    assert "Traceback" not in r.output and not (tmp_path / "c.db").exists()
