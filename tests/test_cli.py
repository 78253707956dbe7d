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
