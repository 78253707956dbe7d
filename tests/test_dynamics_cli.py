"""``steplab run --monitor`` and ``steplab dynamics`` (issue 23 part 2), and the trace reading
behind it (:mod:`steplab.analysis.dynamics_trace`)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from steplab import workloads
from steplab.analysis.dynamics_trace import dynamics_trace, edge_ratio, grokking_summary, lr_at
from steplab.cli import app
from steplab.results import EvalRow
from steplab.training.monitoring import PROBE_SEED

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("one_thread")


def _lines(output: str) -> list[str]:
    return [ln for ln in output.strip().splitlines() if ln.strip()]


def test_run_with_monitors_then_dynamics_reads_them(tmp_path) -> None:
    db = str(tmp_path / "d.db")
    r = runner.invoke(app, ["run", "logreg", "--optimizer", "sgd", "--schedule", "constant", "--lr", "0.5", "--wd", "0",
                            "--steps", "12", "--no-stop-at-target", "--monitor", "sharpness,gns:batches=4",
                            "--monitor", "laziness", "--monitor-every", "4", "--db", db, "--name", "eos"])
    assert r.exit_code == 0, r.output
    assert "next: steplab dynamics 1 --db" in r.output
    r = runner.invoke(app, ["dynamics", "eos", "--db", db, "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["monitors"] == ["sharpness,gns:batches=4", "laziness"] and out["monitor_every"] == 4
    rows = out["rows"]
    assert [row["step"] for row in rows] == [0, 4, 8, 12]
    assert all(row["lr"] == 0.5 and row["sharpness/threshold"] == pytest.approx(4.0) for row in rows)
    assert rows[0]["laziness"] == 0.0 and rows[-1]["laziness"] > 0
    assert all(row["gns/b_simple"] is None or row["gns/b_simple"] > 0 for row in rows)

    # step 0: the top Hessian eigenvalue of the loss on the first probe batch at the seed's init
    wl = workloads.get("logreg")
    model = wl.init_model(0)
    batch = next(wl.batches(PROBE_SEED, torch.device("cpu")))
    params = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def loss_of(flat: torch.Tensor) -> torch.Tensor:
        w, b = flat[:-1].reshape(1, -1), flat[-1:]
        return wl.loss(lambda x: x.double() @ w.T + b, (batch[0], batch[1].double()))  # type: ignore[arg-type]

    hessian = torch.autograd.functional.hessian(loss_of, params.double())
    assert rows[0]["sharpness"] == pytest.approx(float(torch.linalg.eigvalsh(hessian)[-1]), rel=1e-3)

    r = runner.invoke(app, ["dynamics", "1", "--db", db], env={"COLUMNS": "300"})
    assert r.exit_code == 0, r.output
    assert "2/lr" in r.output and "sharpness" in r.output and "laziness" in r.output
    png = tmp_path / "d.png"
    r = runner.invoke(app, ["dynamics", "1", "--db", db, "--csv", "--plot", str(png)])
    assert r.exit_code == 0, r.output
    header = r.stdout.splitlines()[0].split(",")
    assert header[:3] == ["step", "lr", "sharpness"] and len(r.stdout.splitlines()) == 5
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_run_without_monitors_gets_one_line_and_reading_creates_no_database(tmp_path) -> None:
    db = str(tmp_path / "d.db")
    assert runner.invoke(app, ["run", "logreg", "--steps", "3", "--db", db]).exit_code == 0
    r = runner.invoke(app, ["dynamics", "1", "--db", db])
    assert r.exit_code == 0 and len(_lines(r.output)) == 1 and "--monitor" in r.output, r.output
    r = runner.invoke(app, ["dynamics", "1", "--db", str(tmp_path / "typo.db")])
    assert r.exit_code == 2 and len(_lines(r.output)) == 1 and not (tmp_path / "typo.db").exists()


def test_unknown_monitor_is_one_line_and_stores_nothing(tmp_path) -> None:
    db = tmp_path / "d.db"
    r = runner.invoke(app, ["run", "logreg", "--steps", "3", "--monitor", "sharpness,nosuch", "--db", str(db)])
    assert r.exit_code == 2 and len(_lines(r.output)) == 1, r.output
    assert "nosuch" in r.output and "sharpness" in r.output and not db.exists()
    r = runner.invoke(app, ["run", "logreg", "--steps", "3", "--monitor", "laziness", "--monitor-every", "0"])
    assert r.exit_code == 2 and "monitor-every" in r.output


def _row(step: int, metric: str, value: float) -> EvalRow:
    return EvalRow(step=step, time_s=0.0, split=metric.split("/")[0], metric=metric, value=value)


def test_dynamics_trace_lines_up_monitors_with_the_lr_and_thresholds() -> None:
    steps = {"step": np.arange(10), "lr": 0.1 * (np.arange(10) + 1)}
    assert lr_at(steps, [0, 5, 10]) == pytest.approx([0.1, 0.6, 1.0])  # after the last update: its rate
    evals = [_row(0, "validation/loss", 1.0)]
    for s, sharp in ((0, 1.0), (5, 3.0), (10, 2.1)):
        evals += [_row(s, "dynamics/sharpness", sharp), _row(s, "dynamics/sharpness/cost_s", 0.1)]
    evals += [_row(10, "dynamics/sharpness/preconditioned", 30.0), _row(10, "dynamics/sharpness/preconditioned/threshold", 38.0),
              _row(5, "dynamics/laziness", 0.2)]
    trace = dynamics_trace(evals, steps)
    assert trace.steps == [0, 5, 10]
    assert trace.columns() == ["sharpness", "sharpness/threshold", "sharpness/preconditioned",
                               "sharpness/preconditioned/threshold", "laziness"]
    assert trace.values["sharpness/threshold"] == pytest.approx([20.0, 2 / 0.6, 2.0])  # 2/lr where none recorded
    assert math.isnan(trace.values["laziness"][0]) and trace.values["laziness"][1] == 0.2
    # the median of sharpness / (2/lr) over the second half of the run: steps 5 and 10
    assert edge_ratio(trace) == pytest.approx(np.median([3.0 / (2 / 0.6), 2.1 / 2.0]))
    assert grokking_summary(trace) is None
    from steplab.report.dynamics_figures import panels

    assert list(panels(trace).values()) == [["sharpness"], ["sharpness/preconditioned"], ["laziness"]]
    grok = dynamics_trace([_row(0, "dynamics/grokking/train_accuracy", 0.2), _row(4, "dynamics/grokking/train_accuracy", 1.0),
                           _row(4, "dynamics/grokking/fit_step", 4.0)], steps)
    assert grokking_summary(grok) == {"fit_step": 4.0, "generalize_step": math.inf, "delay": math.inf}
