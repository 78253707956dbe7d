"""Exit codes people and scripts can trust (issue 27): a command that printed its result
exits 0; an error comes before any result."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from steplab.cli import app

runner = CliRunner()


def test_predict_transfer_with_too_few_stored_horizons_prints_a_note_and_exits_0(tmp_path: Path) -> None:
    db = str(tmp_path / "t.db")
    assert runner.invoke(app, ["run", "logreg", "--steps", "20", "--db", db]).exit_code == 0
    args = ["predict", "transfer", "-s", "linear", "--from", "1000", "--lr", "3e-3", "--to", "4000",
            "--workload", "charlm", "--algorithm", "adamw-linear", "--db", db]
    r = runner.invoke(app, args, env={"COLUMNS": "300"})
    assert r.exit_code == 0, r.output
    assert "bound rule" in r.output and "power law (Bjorck et al. 2024): not fitted" in r.output


def test_predict_transfer_errors_come_before_the_result(tmp_path: Path) -> None:
    base = ["predict", "transfer", "-s", "linear", "--from", "1000", "--lr", "3e-3", "--to", "4000"]
    r = runner.invoke(app, [*base, "--workload", "charlm"])
    assert r.exit_code == 2 and "bound rule" not in r.output and "--algorithm" in r.output
    r = runner.invoke(app, [*base, "--workload", "charlm", "--algorithm", "adamw-linear", "--db",
                            str(tmp_path / "typo.db")])
    assert r.exit_code == 2 and "bound rule" not in r.output and "no database at" in r.output
    assert not (tmp_path / "typo.db").exists()
