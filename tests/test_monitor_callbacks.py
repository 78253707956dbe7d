"""Monitors in a user's own loop (the ``Recorder``) and in the Lightning and Hugging Face
callbacks (issue 23 part 1): recorded as ``dynamics/...`` evaluations at step 0 and on the
cadence, with values checked by hand, and the loss trace unchanged."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from steplab.errors import SpecError
from steplab.store import open_store
from steplab.training.recorder import Recorder

pytestmark = pytest.mark.usefixtures("one_thread")


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=g)
    return x, x @ torch.randn(4, 1, generator=g)


def _mse(model: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    return torch.nn.functional.mse_loss(model(batch[0]), batch[1])


def _user_loop(**monitoring: object) -> tuple[Recorder, torch.nn.Module, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = _data()
    probe = [(x[:16], y[:16]), (x[16:32], y[16:32])]
    if monitoring:
        monitoring = {"model": model, "loss_fn": _mse, "probe_batches": probe, **monitoring}
    rec = Recorder(opt, **monitoring)  # type: ignore[arg-type]
    for _ in range(10):
        i = torch.randint(0, 64, (16,))  # the global generator: monitors must not move it
        loss = _mse(model, (x[i], y[i]))
        loss.backward()
        opt.step()
        opt.zero_grad()
        rec.log(loss)
    return rec, model, start


def test_recorder_monitors_a_user_loop_without_changing_it() -> None:
    plain, _, _ = _user_loop()
    rec, model, start = _user_loop(monitors="laziness,sharpness:method=power:iters=50,gns:batches=2", monitor_every=5)
    assert np.array_equal(plain.trace()["loss"], rec.trace()["loss"])
    evals = {(e.step, e.metric): e.value for e in rec.eval_rows}
    assert sorted({s for s, m in evals if m == "dynamics/laziness"}) == [0, 5, 10]
    moved = sum(float((p.detach().double() - start[n].double()).square().sum()) for n, p in model.named_parameters())
    size = sum(float(p0.double().square().sum()) for p0 in start.values())
    assert evals[(0, "dynamics/laziness")] == 0.0
    assert evals[(10, "dynamics/laziness")] == pytest.approx(math.sqrt(moved / size), rel=1e-9)
    assert evals[(10, "dynamics/sharpness/threshold")] == pytest.approx(2 / 0.1)  # plain SGD: 2/lr
    assert evals[(10, "dynamics/sharpness")] > 0 and rec.eval_time_s > 0


def test_recorder_monitor_at_the_users_cadence_and_bad_input(tmp_path: Path) -> None:
    model = torch.nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = _data()
    with Recorder(opt, db=tmp_path / "r.db", monitors="laziness:per_layer=false") as rec:
        assert rec.monitor(model, _mse, [(x, y)]) == {"dynamics/laziness": 0.0, "dynamics/laziness/squared": 0.0,
                                                      "dynamics/laziness/weight_norm": pytest.approx(
                                                          float(torch.cat([p.detach().reshape(-1) for p in model.parameters()]).norm())),
                                                      "dynamics/laziness/cost_s": pytest.approx(0, abs=1.0)}
        _mse(model, (x, y)).backward()
        opt.step()
        rec.log(0.0)
        assert rec.monitor()["dynamics/laziness"] > 0  # theta_0 is the model at the first call
    with open_store(tmp_path / "r.db") as store:
        (t,) = store.list_trials()
        assert t.spec.settings["monitors"] == ["laziness:per_layer=false"]
        assert [e.step for e in store.evals(t.id) if e.metric == "dynamics/laziness"] == [0, 1]  # type: ignore[arg-type]
    with pytest.raises(SpecError, match="monitors="):
        Recorder(opt).monitor(model, _mse, [(x, y)])
    with pytest.raises(SpecError, match="monitor_every= needs"):
        Recorder(opt, monitors="laziness", monitor_every=5)
    with pytest.raises(SpecError, match="nosuch"):
        Recorder(opt, monitors="nosuch")


def _dynamics(db: Path) -> tuple[np.ndarray, dict[tuple[int, str], float]]:
    with open_store(db) as store:
        (t,) = store.list_trials()
        return store.steps(t.id)["loss"], {(e.step, e.metric): e.value for e in store.evals(t.id)}  # type: ignore[arg-type]


def test_lightning_callback_records_monitors_without_changing_the_run(tmp_path: Path) -> None:
    pytest.importorskip("lightning", reason="needs the [lightning] extra: pip install 'steplab[lightning]'")
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader, TensorDataset

    from steplab.integrations.lightning import SteplabLightningCallback

    x, y = _data()

    class Tiny(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(1)
            self.net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))

        def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
            loss = torch.nn.functional.mse_loss(self.net(batch[0]), batch[1])
            self.log("train_loss", loss)
            return loss

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.05)

    losses = []
    for name, options in (("off", {}), ("on", {"monitors": "laziness,gns:batches=2", "monitor_every": 4})):
        torch.manual_seed(0)
        trainer = pl.Trainer(max_steps=8, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                             enable_progress_bar=False, enable_model_summary=False, deterministic=True,
                             callbacks=[SteplabLightningCallback(tmp_path / f"{name}.db", **options)])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trainer.fit(Tiny(), DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True))
        loss, evals = _dynamics(tmp_path / f"{name}.db")
        losses.append(loss)
    assert len(losses[0]) == 8 and np.array_equal(losses[0], losses[1])
    assert sorted({s for s, m in evals if m == "dynamics/laziness"}) == [0, 4, 8]
    assert evals[(0, "dynamics/laziness")] == 0.0 and evals[(8, "dynamics/laziness")] > 0
    assert evals[(0, "dynamics/gns/batch_size")] == 8.0


def test_hf_callback_records_monitors_with_the_models_own_loss(tmp_path: Path) -> None:
    pytest.importorskip("transformers", reason="needs the [hf] extra: pip install 'steplab[hf]'")
    pytest.importorskip("accelerate", reason="needs the [hf] extra: pip install 'steplab[hf]'")
    from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments

    from steplab.integrations.hf import SteplabTrainerCallback

    g = torch.Generator().manual_seed(0)
    data = [{"input_ids": ids, "labels": ids} for ids in torch.randint(0, 32, (16, 8), generator=g)]
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=32, n_positions=8, n_embd=8, n_layer=1, n_head=2))
    args = TrainingArguments(output_dir=str(tmp_path / "out"), max_steps=4, per_device_train_batch_size=4,
                             learning_rate=1e-2, logging_steps=1, save_strategy="no", report_to=[], use_cpu=True,
                             disable_tqdm=True, dataloader_num_workers=0, seed=0)
    cb = SteplabTrainerCallback(tmp_path / "hf.db", monitors="laziness,gns:batches=2,logits", monitor_every=2)
    Trainer(model=model, args=args, train_dataset=data, callbacks=[cb]).train()
    _, evals = _dynamics(tmp_path / "hf.db")
    assert sorted({s for s, m in evals if m == "dynamics/laziness"}) == [0, 2, 4]
    assert evals[(0, "dynamics/laziness")] == 0.0 and evals[(4, "dynamics/laziness")] > 0
    assert evals[(0, "dynamics/gns/batch_size")] == 4.0 and evals[(4, "dynamics/gns/trace_sigma")] > 0
    # the output logits of a ModelOutput (.logits): log Z of 32 near-uniform logits starts near ln 32
    assert abs(evals[(0, "dynamics/logits/log_z")] - math.log(32)) < 0.1
