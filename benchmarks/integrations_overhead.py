"""Per-step cost of the Lightning and Hugging Face Trainer callbacks (steplab.integrations)
against the same training loop without them.

Lightning: a small MLP regression fitted for N steps by ``lightning.pytorch.Trainer``; HF: a
tiny GPT-2 (built from a ``GPT2Config``, no download) trained for N steps by
``transformers.Trainer`` with ``logging_steps=1`` in both runs (the callback needs the
per-step logs; the Trainer's own logging cost is in both). The runs with and without the
callback alternate in one process (R rounds, each round runs both), one thread; each run's
time per step is measured from step 20 to the last step by a timing callback present in both
(registered first, so at the last step it reads the clock before the steplab callback runs;
the steady state is what it measures: the one-time cost of opening the store and creating the
trial, about as much as a few steps, is left out, while the periodic flushes to SQLite
every ``flush_every=200`` steps are in). Prints, per framework, the median
per-step ratio (with / without) over rounds and the 90% Student-t interval of the mean ratio
over rounds (``steplab.analysis.seeds.seed_interval``).

    .venv/bin/python benchmarks/integrations_overhead.py [--rounds 3] [--steps 300]
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import torch

from steplab.analysis.seeds import seed_interval

#: steps left out of the clock at the start (set-up, first-step allocations)
SKIP = 20


def lightning_run(steps: int, with_callback: bool, db: Path) -> float:
    """Seconds per step of ``Trainer.fit`` on a 3-layer MLP, with or without the callback."""
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader, TensorDataset

    from steplab.integrations.lightning import SteplabLightningCallback

    class Clock(pl.Callback):
        def on_train_batch_end(self, trainer: pl.Trainer, *args: object) -> None:
            if trainer.global_step == SKIP:
                self.t0 = time.perf_counter()
            elif trainer.global_step == steps:
                self.dt = time.perf_counter() - self.t0

    class MLP(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(128, 512), torch.nn.GELU(), torch.nn.Linear(512, 512),
                                           torch.nn.GELU(), torch.nn.Linear(512, 1))

        def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
            return torch.nn.functional.mse_loss(self.net(batch[0]), batch[1])

        def configure_optimizers(self) -> dict[str, object]:
            opt = torch.optim.AdamW(self.parameters(), lr=1e-3)
            sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 - s / (steps + 1))
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    g = torch.Generator().manual_seed(0)
    x = torch.randn(64 * steps, 128, generator=g)
    y = x[:, :1] * 2 + 0.1 * torch.randn(64 * steps, 1, generator=g)
    torch.manual_seed(0)
    clock = Clock()
    callbacks: list[pl.Callback] = [clock]
    if with_callback:
        callbacks.append(SteplabLightningCallback(db))
    trainer = pl.Trainer(max_steps=steps, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=callbacks)
    trainer.fit(MLP(), DataLoader(TensorDataset(x, y), batch_size=64))
    return clock.dt / (steps - SKIP)


def hf_run(steps: int, with_callback: bool, db: Path, out: Path) -> float:
    """Seconds per step of ``Trainer.train`` on a tiny GPT-2, with or without the callback."""
    from transformers import (
        GPT2Config,
        GPT2LMHeadModel,
        PrinterCallback,
        Trainer,
        TrainerCallback,
        TrainerState,
        TrainingArguments,
    )

    from steplab.integrations.hf import SteplabTrainerCallback

    class Clock(TrainerCallback):
        def on_step_end(self, args: object, state: TrainerState, control: object, **kw: object) -> None:
            if state.global_step == SKIP:
                self.t0 = time.perf_counter()
            elif state.global_step == steps:
                self.dt = time.perf_counter() - self.t0

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=256, n_positions=64, n_embd=64, n_layer=2, n_head=4))
    g = torch.Generator().manual_seed(0)
    data = [{"input_ids": ids, "labels": ids} for ids in torch.randint(0, 256, (8 * steps, 64), generator=g)]
    args = TrainingArguments(output_dir=str(out), max_steps=steps, per_device_train_batch_size=8,
                             learning_rate=1e-3, lr_scheduler_type="cosine", logging_steps=1, save_strategy="no",
                             report_to=[], use_cpu=True, disable_tqdm=True, dataloader_num_workers=0, seed=0)
    clock = Clock()
    callbacks: list[TrainerCallback] = [clock]
    if with_callback:
        callbacks.append(SteplabTrainerCallback(db))
    trainer = Trainer(model=model, args=args, train_dataset=data, callbacks=callbacks)
    trainer.remove_callback(PrinterCallback)  # disable_tqdm prints every log line otherwise
    trainer.train()
    return clock.dt / (steps - SKIP)


def _interval(ratios: list[float]) -> str:
    iv = seed_interval(ratios, 0.9)
    return f"[{iv.low:.3f}, {iv.high:.3f}]" if math.isfinite(iv.low) else "(one round)"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--frameworks", default="lightning,hf")
    args = ap.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    for name in ("lightning", "lightning.pytorch", "transformers"):
        logging.getLogger(name).setLevel(logging.ERROR)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    print(f"{'framework':10s} {'steps':>5s} {'without ms/step':>15s} {'with':>8s} {'ratio':>7s} {'90% interval (mean)':>19s}")
    with tempfile.TemporaryDirectory() as tmp:
        for fw in args.frameworks.split(","):
            def run(with_cb: bool, r: int, fw: str = fw) -> float:
                db = Path(tmp) / f"{fw}-{r}-{with_cb}.db"
                if fw == "lightning":
                    return lightning_run(args.steps, with_cb, db)
                return hf_run(args.steps, with_cb, db, Path(tmp) / "hf-out")

            run(True, -1), run(False, -1)  # warm-up: imports, allocator, kernels
            without, with_, ratios = [], [], []
            for r in range(args.rounds):
                a = run(False, r)
                b = run(True, r)
                without.append(a), with_.append(b), ratios.append(b / a)
            print(f"{fw:10s} {args.steps:5d} {1e3 * statistics.median(without):15.3f} {1e3 * statistics.median(with_):8.3f}"
                  f" {statistics.median(ratios):7.3f} {_interval(ratios):>19s}")


if __name__ == "__main__":
    main()
