"""steplab.integrations: Lightning and HF Trainer callbacks, TensorBoard / MLflow / CSV
import and export, the CLI around them. Tests of an optional extra skip (with the reason)
only when that extra is not installed."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from steplab.cli import app
from steplab.errors import SourceError, SpecError, StoreError
from steplab.integrations import csvfile, traces
from steplab.results import StepRow, TrialResult, TrialSpec
from steplab.store import open_store
from steplab.training.recorder import Recorder

runner = CliRunner()
# lightning's own code warns about a torch pytree deprecation; not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:.*LeafSpec")


def _counts(db: Path) -> tuple[int, int, int]:
    """(trials, step rows, eval rows) straight from the SQLite file."""
    with sqlite3.connect(db) as conn:
        return tuple(conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]  # type: ignore[return-value]
                     for t in ("trials", "steps", "evals"))


# ------------------------------------------------------------------------------ core pieces
def test_import_trial_is_one_transaction(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    spec = TrialSpec("user", "csv", "x", {}, {}, 0, 2, stop_at_target=False)
    result = TrialResult(spec, "budget", 2, 0.0, 0.0)
    with open_store(db) as store:
        tid = store.import_trial(result, [StepRow(0, 0.0, 0.1, 1.0), StepRow(1, 0.1, 0.1, 0.9)])
        assert store.steps(tid)["loss"].tolist() == [1.0, 0.9]
        with pytest.raises(StoreError):  # the second row repeats a step: nothing of it stays
            store.import_trial(result, [StepRow(0, 0.0, 0.1, 1.0), StepRow(0, 0.1, 0.1, 0.9)])
    assert _counts(db) == (1, 2, 0)


def test_recorder_amend_replaces_the_latest_row() -> None:
    p = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.SGD([p], lr=0.1)
    rec = Recorder(opt, update_norm=False)
    p.grad = torch.full((3,), 2.0)
    opt.step()
    old = rec.amend(grad_norm=torch.tensor(7.0), lr=0.5)
    assert float(old["grad_norm"]) == pytest.approx(math.sqrt(12)) and old["lr"] == 0.1
    with pytest.raises(SpecError, match="log"):
        rec.amend(loss=1.0)
    rec.flush()
    with pytest.raises(SpecError, match="no unflushed row"):
        rec.amend(grad_norm=1.0)
    row = rec.rows[0]
    assert (row.grad_norm, row.lr, row.grad_norm_l1) == (7.0, 0.5, 6.0)
    rec.close()


def test_tags_and_eval_names() -> None:
    assert traces.parse_tags("loss=train/loss, lr=lr") == {"loss": "train/loss", "lr": "lr"}
    with pytest.raises(SourceError, match="KEY=TAG"):
        traces.parse_tags("loss")
    with pytest.raises(SourceError, match="unknown"):
        traces.parse_tags("acc=x")
    assert traces.eval_metric("val_loss") == ("validation", "validation/loss")
    assert traces.eval_metric("eval/accuracy") == ("validation", "validation/accuracy")
    assert traces.eval_metric("train/loss") is None and traces.eval_metric("validation") is None


# ------------------------------------------------------------------------------ CSV
def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_csv_import_round_trips(tmp_path: Path) -> None:
    f = _write(tmp_path / "wandb.csv", "_step,train/loss,lr,grad_norm,val_loss,_runtime\n"
               "0,2.5,0.001,1.5,,0.5\n1,2.25,0.002,1.25,,1.0\n2,2.0,0.003,,1.75,1.5\n")
    with open_store(tmp_path / "s.db") as store:
        tid = csvfile.import_csv(store, f, step="_step", loss="train/loss", lr="lr", grad_norm="grad_norm",
                                 evals=["val_loss"], time="_runtime", optimizer="adamw")
        tr = store.steps(tid)
        assert tr["step"].tolist() == [0, 1, 2]
        assert tr["loss"].tolist() == [2.5, 2.25, 2.0] and tr["lr"].tolist() == [0.001, 0.002, 0.003]
        assert tr["grad_norm"][:2].tolist() == [1.5, 1.25] and math.isnan(tr["grad_norm"][2])
        assert tr["time_s"].tolist() == [0.5, 1.0, 1.5]
        (ev,) = store.evals(tid)
        assert (ev.step, ev.metric, ev.value) == (2, "validation/loss", 1.75)
        t = store.get_trial(tid)
        assert t.status == "budget" and t.spec.algorithm_spec["optimizer"] == "adamw"
        assert t.final_metrics == {"validation/loss": 1.75}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("step,loss\n0,1.0\n1,abc\n2,0.5\n", "line 3|:3"),  # a cell that is not a number
        ("step,loss\n0,1.0\n2,0.9\n1,0.8\n", "not increasing"),  # steps go backwards
        ("step,loss\n0,1.0\n0,0.9\n", "appears twice"),
        ("", "empty"),
        ("step,loss\n", "no rows"),
        ("step,los\n0,1\n", "no column 'loss'"),
        ("step,loss\n0.5,1.0\n", "not an integer"),
    ],
)
def test_malformed_csv_leaves_the_store_unchanged(tmp_path: Path, text: str, message: str) -> None:
    db = tmp_path / "s.db"
    good = _write(tmp_path / "good.csv", "step,loss\n0,1.0\n1,0.9\n")
    with open_store(db) as store:
        csvfile.import_csv(store, good, step="step", loss="loss")
    before = _counts(db)
    bad = _write(tmp_path / "bad.csv", text)
    r = runner.invoke(app, ["import", "csv", str(bad), "--step", "step", "--loss", "loss", "--db", str(db)])
    assert r.exit_code == 2 and "Traceback" not in r.output
    lines = [ln for ln in r.output.strip().splitlines() if ln.strip()]
    assert lines[0].startswith("error:"), r.output
    import re

    assert re.search(message, " ".join(lines)), r.output
    assert _counts(db) == before == (1, 2, 0)


# ------------------------------------------------------------------------------ TensorBoard
def _tb_log(logdir: Path, n: int = 120) -> dict[str, list[float]]:
    from torch.utils.tensorboard import SummaryWriter

    rng = np.random.default_rng(0)
    values: dict[str, list[float]] = {"train/loss": [], "lr": [], "grad_norm": [], "val/loss": []}
    with SummaryWriter(str(logdir)) as w:
        for s in range(n):
            row = {"train/loss": 3.0 * (s + 1) ** -0.3 + 0.1 * rng.random(),
                   "lr": 1e-3 * 0.5 * (1 + math.cos(math.pi * s / n)),
                   "grad_norm": 1.0 + 0.5 * math.exp(-s / 30) + 0.05 * rng.random()}
            for tag, v in row.items():
                w.add_scalar(tag, v, s)
                values[tag].append(v)
            if s % 40 == 39:
                w.add_scalar("val/loss", row["train/loss"] + 0.1, s)
                values["val/loss"].append(row["train/loss"] + 0.1)
    return values


def test_tensorboard_round_trip_and_refine(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard", reason="needs the [tensorboard] extra: pip install 'steplab[tensorboard]'")
    from steplab.integrations import tensorboard

    logdir = tmp_path / "runs" / "exp1"
    written = _tb_log(logdir)
    db = tmp_path / "s.db"
    r = runner.invoke(app, ["import", "tensorboard", str(logdir), "--tags", "loss=train/loss,lr=lr,grad_norm=grad_norm",
                            "--db", str(db)])
    assert r.exit_code == 0, r.output
    assert "imported trial 1: 120 steps" in r.output
    with open_store(db) as store:
        tr = store.steps(1)
        assert tr["step"].tolist() == list(range(120))
        for column, tag in (("loss", "train/loss"), ("lr", "lr"), ("grad_norm", "grad_norm")):
            # event files hold float32: the import returns exactly what TensorBoard stored
            np.testing.assert_array_equal(tr[column], np.float32(written[tag]).astype(np.float64))
        evals = store.evals(1)
        assert [e.step for e in evals] == [39, 79, 119]
        np.testing.assert_array_equal([e.value for e in evals], np.float32(written["val/loss"]))
        assert {e.metric for e in evals} == {"validation/loss"}

        # export writes the same values back as a TensorBoard run
        (run,) = tensorboard.export_trials(store, tmp_path / "tb-out")
        back = tensorboard.read_scalars(run)
        np.testing.assert_array_equal(back["loss"].values, tr["loss"])
        assert back["validation/loss"].steps == [39, 79, 119]

    out = tmp_path / "refined.json"
    r = runner.invoke(app, ["refine", "1", "--norm", "l2", "--db", str(db), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert out.exists() and '"points"' in out.read_text()
    r = runner.invoke(app, ["predict", "fit", "1", "--db", str(db), "--out", str(tmp_path / "law.json")])
    assert r.exit_code == 0, r.output


def test_tensorboard_bad_input_is_one_line(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard", reason="needs the [tensorboard] extra: pip install 'steplab[tensorboard]'")
    logdir = tmp_path / "exp"
    _tb_log(logdir, n=12)
    db = tmp_path / "s.db"
    for args, needle in (
        ([str(logdir), "--tags", "loss=nope"], "no 'nope' for loss"),
        ([str(tmp_path / "missing")], "does not exist"),
        ([str(tmp_path / "empty")], "no TensorBoard event files"),
    ):
        (tmp_path / "empty").mkdir(exist_ok=True)
        r = runner.invoke(app, ["import", "tensorboard", *args, "--db", str(db)])
        lines = [ln for ln in r.output.strip().splitlines() if ln.strip()]
        assert r.exit_code == 2 and len(lines) == 1 and needle in lines[0], r.output
    assert _counts(db) == (0, 0, 0)


# ------------------------------------------------------------------------------ MLflow
@pytest.fixture
def mlflow_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    pytest.importorskip("mlflow", reason="needs the [mlflow] extra: pip install 'steplab[mlflow]'")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    return str(tmp_path / "mlruns")


def test_mlflow_round_trip(tmp_path: Path, mlflow_uri: str) -> None:
    from mlflow.entities import Metric, Param

    from steplab.integrations import mlflow as ml

    c = ml.client(mlflow_uri)
    exp = c.create_experiment("user")
    run = c.create_run(exp, run_name="tiny", start_time=1_000_000)
    loss = [2.0 / (s + 1) ** 0.5 + 0.123456789 for s in range(40)]
    lrs = [0.01 * (1 - s / 40) for s in range(40)]
    metrics = [Metric("loss", v, 1_000_000 + 1000 * s, s) for s, v in enumerate(loss)]
    metrics += [Metric("learning_rate", v, 1_000_000 + 1000 * s, s) for s, v in enumerate(lrs)]
    metrics += [Metric("val_accuracy", 0.5 + s / 100, 1_000_000 + 1000 * s, s) for s in (9, 19, 39)]
    c.log_batch(run.info.run_id, metrics=metrics, params=[Param("optimizer", "sgd"), Param("batch_size", "32")])
    c.set_terminated(run.info.run_id)

    db = tmp_path / "s.db"
    r = runner.invoke(app, ["import", "mlflow", "--tracking-uri", mlflow_uri, run.info.run_id, "--db", str(db)])
    assert r.exit_code == 0, r.output
    with open_store(db) as store:
        (t,) = store.list_trials()
        tr = store.steps(t.id)  # type: ignore[arg-type]
        assert tr["loss"].tolist() == loss and tr["lr"].tolist() == lrs  # float64, bit for bit
        assert tr["time_s"].tolist() == [float(s) for s in range(40)]
        assert [(e.step, e.metric, e.value) for e in store.evals(t.id)] == [  # type: ignore[arg-type]
            (s, "validation/accuracy", 0.5 + s / 100) for s in (9, 19, 39)]
        assert t.spec.hyperparameters == {"optimizer": "sgd", "batch_size": 32}
        assert t.spec.algorithm_spec["optimizer"] == "sgd" and store.trial_info(t.id)["name"] == "tiny"  # type: ignore[arg-type]

        # and back out: one MLflow run with the same metric history and params
        (rid,) = ml.export_trials(store, mlflow_uri, experiment="steplab-export")
    back = c.get_run(rid)
    assert back.data.params["hp.batch_size"] == "32" and back.info.status == "FINISHED"
    assert [m.value for m in c.get_metric_history(rid, "loss")] == loss
    assert "schedule.png" in [a.path for a in c.list_artifacts(rid)]

    before = _counts(db)
    r = runner.invoke(app, ["import", "mlflow", "--tracking-uri", mlflow_uri, "0123456789abcdef", "--db", str(db)])
    lines = [ln for ln in r.output.strip().splitlines() if ln.strip()]
    assert r.exit_code == 2 and len(lines) == 1 and "0123456789abcdef" in lines[0], r.output
    assert _counts(db) == before


# ------------------------------------------------------------------------------ HF Trainer
def test_hf_trainer_callback_records_the_schedule(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("transformers", reason="needs the [hf] extra: pip install 'steplab[hf]'")
    pytest.importorskip("accelerate", reason="needs the [hf] extra: pip install 'steplab[hf]'")
    from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments

    from steplab.integrations.hf import SteplabTrainerCallback

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=64, n_positions=16, n_embd=16, n_layer=1, n_head=2))
    g = torch.Generator().manual_seed(0)
    data = [{"input_ids": ids, "labels": ids} for ids in torch.randint(0, 64, (64, 16), generator=g)]
    args = TrainingArguments(
        output_dir=str(tmp_path / "out"), max_steps=30, per_device_train_batch_size=4, learning_rate=3e-3,
        lr_scheduler_type="cosine", warmup_steps=5, logging_steps=1, eval_strategy="steps", eval_steps=10,
        per_device_eval_batch_size=8, max_grad_norm=0.5, save_strategy="no", report_to=[], use_cpu=True,
        disable_tqdm=True, dataloader_num_workers=0, seed=0,
    )
    db = tmp_path / "s.db"
    cb = SteplabTrainerCallback(db, name="gpt2-tiny", refine=tmp_path / "refined.json", predict_every=10)
    trainer = Trainer(model=model, args=args, train_dataset=data, eval_dataset=data[:8], callbacks=[cb])
    trainer.train()

    sched = trainer.lr_scheduler
    expected = [sched.base_lrs[0] * sched.lr_lambdas[0](s) for s in range(30)]
    logs = [h for h in trainer.state.log_history if "loss" in h and "grad_norm" in h]
    with open_store(db) as store:
        (t,) = store.list_trials()
        tr = store.steps(t.id)  # type: ignore[arg-type]
        evals = store.evals(t.id)  # type: ignore[arg-type]
    assert t.status == "budget" and t.spec.hyperparameters["max_steps"] == 30 and t.spec.budget_steps == 30
    assert tr["step"].tolist() == list(range(30))
    np.testing.assert_allclose(tr["lr"], expected, rtol=1e-12)
    assert tr["lr"][0] == 0.0 and tr["lr"][5] == pytest.approx(3e-3)  # warm-up, then the peak
    # loss and pre-clip gradient norm are the Trainer's logged values, one per update
    assert len(logs) == 30
    np.testing.assert_allclose(tr["loss"], [h["loss"] for h in logs], rtol=1e-6)
    np.testing.assert_allclose(tr["grad_norm"], [h["grad_norm"] for h in logs], rtol=1e-6)
    assert (tr["grad_norm"] > 0.5).any()  # clipping was active, the recorded norms are from before it
    assert np.isfinite(tr["grad_norm_l1"]).all() and (tr["grad_norm_l1"] > tr["grad_norm"]).all()
    assert np.isfinite(tr["update_norm"]).all()
    assert [e.step for e in evals if e.metric == "validation/loss"] == [10, 20, 30]
    assert t.eval_time_s > 0 and "validation/loss" in t.final_metrics
    ((at, predicted),) = cb.live.predictions  # live use: at 10 updates too few to fit, at 20 a fit
    assert at == 20 and math.isfinite(predicted) and 0 < predicted < tr["loss"][0]
    out = capsys.readouterr().out
    assert "refined schedule of trial 1 written to" in out and (tmp_path / "refined.json").exists()


# ------------------------------------------------------------------------------ Lightning
def _lightning_setup(clip: float) -> tuple[object, object, list[dict[str, float]]]:
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader, TensorDataset

    g = torch.Generator().manual_seed(0)
    x = torch.randn(128, 8, generator=g)
    y = x @ torch.randn(8, 1, generator=g) + 0.1 * torch.randn(128, 1, generator=g)
    hand: list[dict[str, float]] = []

    def lam(s: int) -> float:
        return (s + 1) / 5 if s < 5 else 1.0 - 0.9 * (s - 5) / 25

    class Tiny(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.save_hyperparameters({"width": 8})
            torch.manual_seed(1)
            self.net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))

        def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
            return torch.nn.functional.mse_loss(self.net(batch[0]), batch[1])

        def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
            self.log("val_loss", torch.nn.functional.mse_loss(self.net(batch[0]), batch[1]))

        def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
            grads = [p.grad for p in self.parameters()]
            hand.append({"l2": math.sqrt(sum(float((gr.double() ** 2).sum()) for gr in grads)),
                         "l1": sum(float(gr.double().abs().sum()) for gr in grads)})

        def configure_optimizers(self) -> dict[str, object]:
            opt = torch.optim.AdamW(self.parameters(), lr=0.01)
            sched = torch.optim.lr_scheduler.LambdaLR(opt, lam)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    train = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=False)
    val = DataLoader(TensorDataset(x[:32], y[:32]), batch_size=32)
    trainer = pl.Trainer(max_steps=30, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                         val_check_interval=10, check_val_every_n_epoch=None, gradient_clip_val=clip,
                         deterministic=True)
    return trainer, (Tiny(), train, val, lam), hand


def test_lightning_callback_matches_scheduler_hand_norms_and_plain_loop(tmp_path: Path) -> None:
    pytest.importorskip("lightning", reason="needs the [lightning] extra: pip install 'steplab[lightning]'")
    from steplab.integrations.lightning import SteplabLightningCallback

    trainer, (module, train, val, lam), hand = _lightning_setup(clip=0.05)
    db = tmp_path / "s.db"
    cb = SteplabLightningCallback(db, predict_every=0)
    trainer.callbacks.append(cb)  # type: ignore[attr-defined]
    trainer.fit(module, train, val)  # type: ignore[attr-defined]
    with open_store(db) as store:
        (t,) = store.list_trials()
        tr = store.steps(t.id)  # type: ignore[arg-type]
        evals = store.evals(t.id)  # type: ignore[arg-type]
    assert t.status == "budget" and t.spec.hyperparameters["width"] == 8 and t.spec.algorithm == "AdamW"
    assert tr["step"].tolist() == list(range(30))
    np.testing.assert_allclose(tr["lr"], [0.01 * lam(s) for s in range(30)], rtol=1e-12)
    assert len(hand) == 30
    np.testing.assert_allclose(tr["grad_norm"], [h["l2"] for h in hand], rtol=1e-5)
    np.testing.assert_allclose(tr["grad_norm_l1"], [h["l1"] for h in hand], rtol=1e-5)
    assert (tr["grad_norm"] > 0.05).all()  # before clipping: above the clip threshold
    assert [e.step for e in evals] == [10, 20, 30] and {e.metric for e in evals} == {"validation/loss"}

    # the plain loop with the plain Recorder, same model, data, schedule and clipping: same rows
    plain = type(module)()
    opt = torch.optim.AdamW(plain.parameters(), lr=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lam)
    rec = Recorder(opt)
    batches = iter([b for _ in range(4) for b in train])  # type: ignore[attr-defined]
    for _ in range(30):
        xb, yb = next(batches)
        loss = torch.nn.functional.mse_loss(plain.net(xb), yb)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(plain.parameters(), 0.05)
        opt.step()
        opt.zero_grad()
        sched.step()
        rec.log(loss)
    ref = rec.trace()
    rec.close()
    for column in ("lr", "loss", "update_norm"):
        np.testing.assert_allclose(tr[column], ref[column], rtol=1e-5, err_msg=column)
    # the plain Recorder sees clipped gradients; the callback records them before clipping
    np.testing.assert_allclose(ref["grad_norm"], 0.05, rtol=1e-4)


def test_lightning_failure_marks_trial_failed(tmp_path: Path) -> None:
    pytest.importorskip("lightning", reason="needs the [lightning] extra: pip install 'steplab[lightning]'")
    from steplab.integrations.lightning import SteplabLightningCallback

    trainer, (module, train, val, _), _ = _lightning_setup(clip=0.0)

    def boom(batch: object, batch_idx: int) -> torch.Tensor:
        if batch_idx == 3:
            raise RuntimeError("diverged on purpose")
        return type(module).training_step(module, batch, batch_idx)  # type: ignore[arg-type]

    module.training_step = boom  # type: ignore[attr-defined]
    db = tmp_path / "s.db"
    trainer.callbacks.append(SteplabLightningCallback(db))  # type: ignore[attr-defined]
    with pytest.raises(RuntimeError, match="on purpose"):
        trainer.fit(module, train, val)  # type: ignore[attr-defined]
    with open_store(db) as store:
        (t,) = store.list_trials()
        assert t.status == "failed" and "on purpose" in t.message and t.steps == 3


def test_both_callbacks_take_the_one_options_object() -> None:
    """The Lightning and HF callbacks share :class:`CallbackOptions`: the same keywords, the
    same defaults, and an unknown keyword is refused by both."""
    pytest.importorskip("lightning")
    pytest.importorskip("transformers")
    from steplab.integrations.hf import SteplabTrainerCallback
    from steplab.integrations.lightning import SteplabLightningCallback
    from steplab.integrations.options import CallbackOptions

    kwargs = {"name": "r", "config": {"a": 1}, "flush_every": 7, "l1": False, "predict_every": 5, "tau": 0.2}
    for cls in (SteplabLightningCallback, SteplabTrainerCallback):
        cb = cls("x.db", **kwargs)
        assert cb.options == CallbackOptions(db="x.db", **kwargs)
        assert (cb.live.predict_every, cb.live.tau) == (5, 0.2)
        with pytest.raises(TypeError, match="flush_evry"):
            cls("x.db", flush_evry=3)


def _hinted_refine(output: str) -> list[str]:
    """The ``steplab refine ...`` command of an import's ``next:`` line, as arguments."""
    (line,) = [x for x in output.splitlines() if "next:" in x]
    (cmd,) = [c.strip() for c in line.split("next:", 1)[1].split(",") if c.strip().startswith("steplab refine")]
    return cmd.split()[1:]


@pytest.mark.parametrize(("columns", "optimizer", "norm", "note"), [
    ("step,loss,gn", None, "l2", "optimizer unknown"),  # only l2 norms, no optimizer: say so, use them
    ("step,loss,gn", "adamw", "l2", "calls for l1"),  # an Adam run that logged l2 norms only
    ("step,loss,gn", "sgd", "l2", None),
])
def test_import_hint_is_a_refine_command_that_runs(tmp_path: Path, columns: str, optimizer: str | None,
                                                   norm: str, note: str | None) -> None:
    csv = tmp_path / "log.csv"
    rows = [f"{k},{2.0 / (1 + 0.01 * k):.5f},{1.0 + 0.5 * math.cos(k / 7):.5f}" for k in range(300)]
    csv.write_text(columns + "\n" + "\n".join(rows) + "\n")
    db = str(tmp_path / "h.db")
    args = ["import", "csv", str(csv), "--step", "step", "--loss", "loss", "--grad-norm", "gn", "--db", db]
    r = runner.invoke(app, args + (["--optimizer", optimizer] if optimizer else []), env={"COLUMNS": "80"})
    assert r.exit_code == 0, r.output
    refine_args = _hinted_refine(r.output)
    assert refine_args[-2:] == ["--norm", norm]
    assert (note is None and "(" not in r.output.split("next:")[1]) or (note is not None and note in r.output)
    done = runner.invoke(app, [*refine_args, "--db", db], env={"COLUMNS": "80"})
    assert done.exit_code == 0, done.output  # the hint runs as written: no ping-pong
    assert f"from its {norm} gradient norms" in done.output
    auto = runner.invoke(app, [*refine_args[:-2], "--db", db], env={"COLUMNS": "80"})
    assert auto.exit_code == 0 and f"from its {norm} gradient norms" in auto.output  # auto agrees with the hint


def test_import_hint_without_gradient_norms_suggests_no_refine(tmp_path: Path) -> None:
    csv = tmp_path / "log.csv"
    csv.write_text("step,loss\n" + "\n".join(f"{k},{1.0 / (k + 1):.5f}" for k in range(50)) + "\n")
    db = str(tmp_path / "n.db")
    r = runner.invoke(app, ["import", "csv", str(csv), "--step", "step", "--loss", "loss", "--db", db])
    assert r.exit_code == 0, r.output
    assert "next: steplab runs show 1, steplab predict fit 1 (no gradient norms in this log" in " ".join(r.output.split())
    done = runner.invoke(app, ["refine", "1", "--db", db, "--norm", "l2"])
    assert done.exit_code == 2 and "pass --norm" not in done.output  # no suggestion of a norm that is not there
