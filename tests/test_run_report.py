"""steplab.report.run_report and ``steplab report --trial``: reports of single runs (GitHub issue
11) for a loop recorded with the Recorder and for an imported CSV log, numbers checked
against hand-computed values."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from steplab.cli import app
from steplab.integrations import csvfile
from steplab.report import run_figures, run_report
from steplab.store import open_store
from steplab.training.recorder import Recorder

runner = CliRunner()
ENV = {"COLUMNS": "220"}


def _record_loop(db: Path) -> int:
    """40 SGD steps of a plain loop; the logged losses are (40 - i) / 10, so the final loss
    (mean of the last 5% = 2 steps) is (0.2 + 0.1) / 2 = 0.15 and the min 0.1."""
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LinearLR(opt, start_factor=1.0, end_factor=0.1, total_iters=40)
    x = torch.randn(8, 3)
    with Recorder(opt, db=db, name="my-loop", config={"lr": 0.1}) as rec:
        for i in range(40):
            opt.zero_grad()
            model(x).pow(2).mean().backward()
            opt.step()
            sched.step()
            rec.log((40 - i) / 10)
            if i + 1 in (20, 40):
                acc, loss = (0.8, 0.5) if i + 1 == 20 else (0.75, 0.6)
                rec.eval(**{"validation/accuracy": acc, "validation/loss": loss})
        return int(rec.trial_id)  # type: ignore[arg-type]


def _import_csv(db: Path, tmp_path: Path) -> int:
    """60 rows without gradient norms; loss 1 + 0.01 * (59 - i): the last 5% (3 rows) are
    1.02, 1.01, 1.00, so the final loss is 1.01; val_loss 1.5, 1.2, 1.3 -> final 1.3, best 1.2."""
    lines = ["step,loss,lr,val_loss"]
    val = {19: "1.5", 39: "1.2", 59: "1.3"}
    for i in range(60):
        lines.append(f"{i},{1 + 0.01 * (59 - i):.2f},{0.001 * (1 - i / 60):.6f},{val.get(i, '')}")
    f = tmp_path / "wandb.csv"
    f.write_text("\n".join(lines) + "\n")
    with open_store(db) as store:
        return csvfile.import_csv(store, f, step="step", loss="loss", lr="lr", evals=["val_loss"])


def test_final_loss_and_direction() -> None:
    assert run_report.final_loss(np.arange(1.0, 41.0)) == pytest.approx(39.5)  # last 2 of 40
    assert run_report.final_loss(np.array([3.0, np.nan, 1.0])) == 1.0  # NaN = not recorded
    assert math.isnan(run_report.final_loss(np.array([np.nan])))
    assert run_report.lower_is_better("train/loss") and run_report.lower_is_better("validation/error_rate")
    assert not run_report.lower_is_better("validation/accuracy")


def test_recorded_loop_report(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    tid = _record_loop(db)
    with open_store(db) as store:
        (run,) = run_report.load_runs(store, [tid])
    s = run_report.summarize(run)
    assert s.steps == 40 and s.final_loss == pytest.approx(0.15) and s.min_loss == pytest.approx(0.1)
    assert s.evals == {"validation/accuracy": (0.75, 0.8), "validation/loss": (0.6, 0.5)}
    assert s.lr_range[0] < s.lr_range[1] == pytest.approx(0.1) and s.grad_norm_kind == "l2"
    assert run.source.startswith("your training loop")

    html = tmp_path / "run.html"
    r = runner.invoke(app, ["report", "--trial", str(tid), "--html", str(html), "--db", str(db)], env=ENV)
    assert r.exit_code == 0, r.output
    assert re.search(r"final loss \(last 5%\)[\s│]+0\.15\b", r.output), r.output
    assert "my-loop" in r.output and "SGD" in r.output and "0.8 (max)" in r.output and "0.5 (min)" in r.output
    text = html.read_text()
    # loss, lr, gradient norm, validation/accuracy, validation/loss
    assert text.count("<img ") == 5 and "my-loop" in text
    assert "<script" not in text and "http" not in text.split("<body>")[1]


def test_imported_csv_report_skips_grad_norm(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    tid = _import_csv(db, tmp_path)
    with open_store(db) as store:
        (run,) = run_report.load_runs(store, [tid])
    s = run_report.summarize(run)
    assert s.final_loss == pytest.approx(1.01) and s.min_loss == pytest.approx(1.0)
    assert s.grad_norm_kind == "" and math.isnan(s.grad_norm_range[0]) and math.isnan(s.train_time_s)
    assert s.evals == {"validation/loss": (1.3, 1.2)}
    assert [name for name, png in run_figures.figures([run]) if png is None] == ["Gradient norm"]

    html = tmp_path / "csv.html"
    r = runner.invoke(app, ["report", "--trial", str(tid), "--html", str(html), "--db", str(db)], env=ENV)
    assert r.exit_code == 0, r.output
    assert re.search(r"final loss \(last 5%\)[\s│]+1\.01\b", r.output), r.output
    assert "wandb.csv" in r.output and "imported from CSV" in r.output
    text = html.read_text()
    assert text.count("<img ") == 3  # loss, lr, validation/loss; no gradient norm figure
    assert "no gradient norm recorded" in text and "wandb.csv" in text


def test_several_trials_overlaid(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    a, b = _record_loop(db), _import_csv(db, tmp_path)
    html = tmp_path / "both.html"
    r = runner.invoke(app, ["report", "--trial", str(a), "--trial", str(b), "--trial", str(a),
                            "--html", str(html), "--db", str(db)], env=ENV)
    assert r.exit_code == 0, r.output
    assert re.search(r"final loss \(last 5%\)[\s│]+0\.15[\s│]+1\.01\b", r.output), r.output
    text = html.read_text()
    # loss, lr, gradient norm (only the recorded loop has it), both metrics
    assert text.count("<img ") == 5 and "my-loop" in text and "wandb.csv" in text
    assert f"not recorded by #{b} wandb.csv" in text


def test_errors_are_one_line(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    tid = _import_csv(db, tmp_path)
    for args, message in ((["--trial", str(tid), "--study", "1"], "--trial and --study"),
                          (["--trial", "99"], "no trial with id 99")):
        r = runner.invoke(app, ["report", *args, "--db", str(db)], env=ENV)
        lines = [ln for ln in r.output.strip().splitlines() if ln.strip()]
        assert r.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error:"), r.output
        assert message in lines[0] and "Traceback" not in r.output
    r = runner.invoke(app, ["report", "--db", str(db)], env=ENV)  # no benchmark: the hint names --trial
    assert r.exit_code == 2 and "--trial" in r.output
