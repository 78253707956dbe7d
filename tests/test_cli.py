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
