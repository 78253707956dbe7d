"""Long continual streams for loss of plasticity: hundreds of tasks, a fixed number of updates
each, measured by *online* accuracy (Dohare et al. 2024, "Loss of plasticity in deep
continual learning", Nature 632; Elsayed & Mahmood 2024, "Addressing loss of plasticity and
catastrophic forgetting in continual learning", ICLR; spec sheet
``shared/references/dynamics-plasticity-statistics.md`` §4-5).

==============================  ===============================================================
``input-permuted``              each task a new random permutation of the input features of
                                all of ``data`` (``digits``: sklearn's 1797 8x8 digits, 64
                                features; ``mnist1d``: the 5000 MNIST-1D signals, 40
                                features); Dohare et al.'s Online Permuted MNIST, scaled down.
``label-permuted``              each task a new random permutation of the 10 labels, inputs
                                unchanged (Elsayed & Mahmood's label-permuted EMNIST/CIFAR).
``slowly-changing-regression``  Dohare et al.'s problem: 20 input bits, the first 15 fixed
                                for a period of ``steps x batch`` examples (``flip=one``: one
                                random slow bit flips per period, as the paper describes;
                                ``flip=all``: all 15 redrawn, their code's default), the other 5
                                fresh per example; the target is a fixed random net of 100
                                linear threshold units (``+-1`` weights, unit ``i`` fires when
                                its pre-activation exceeds ``beta (m + 1) - S_i``, ``beta = 0.7``,
                                ``S_i`` its count of ``-1`` weights) with a ``+-1`` readout; MSE.
==============================  ===============================================================

Online accuracy (Dohare et al., "Methods"): the prediction on each training batch made
*before* the update on it, averaged over the task's updates. It is read off the training
loss's own forward pass (:meth:`LongStream.loss`, train mode only), so it costs nothing and
evaluating never touches the task. At every task end the evaluation reports the finished
task's ``online/accuracy`` (regression: ``online/loss``) and ``online/task`` (0-based), so the
curve "accuracy on task k against k" is the eval rows of one metric; at every ``probe_every``-th
task start (the same evaluation, and step 0) the probe metrics of
:mod:`steplab.workloads.plasticity_metrics` on the first ``probe`` examples of the new task:
dead units, effective rank per hidden layer, weight magnitude. ``reset=shrink-perturb``
applies Ash & Adams' shrink-and-perturb (``shrink``, ``noise``) to the net at every task start
(:meth:`LongStream.reset`; the optimizer's state is kept). The net is an MLP of ``depth``
hidden layers of ``width`` units, weights Kaiming-uniform and biases 0 (as Dohare et al.'s
``deep_ffnn``). Task permutations and the regression target depend on the run's seed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from steplab.errors import WorkloadError
from steplab.workloads.plasticity_metrics import probe_metrics
from steplab.workloads.stream_spec import StreamSpec, parse_stream

__all__ = ["LongNet", "LongStream", "online_summary"]

Batch = tuple[torch.Tensor, torch.Tensor]
_ACTS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "leaky_relu": nn.LeakyReLU, "elu": nn.ELU}
_GAIN = {"relu": "relu", "tanh": "tanh", "sigmoid": "sigmoid", "leaky_relu": "leaky_relu", "elu": "relu"}
#: slowly-changing regression: input bits, slow bits, target units, LTU threshold factor
BITS, SLOW, TARGET_UNITS, BETA = 20, 15, 100, 0.7


class LongNet(nn.Module):
    """MLP ``inputs -> width x depth (act) -> outputs``; Kaiming-uniform weights (gain of
    ``act``), zero biases (Dohare et al.'s ``lop/nets/deep_ffnn.py``)."""

    def __init__(self, inputs: int, outputs: int, width: int, depth: int, act: str = "relu") -> None:
        super().__init__()
        layers: list[nn.Module] = []
        fan = inputs
        for _ in range(depth):
            layers += [nn.Linear(fan, width), _ACTS[act]()]
            fan = width
        layers.append(nn.Linear(fan, outputs))
        self.net = nn.Sequential(*layers)
        for m in self.net:
            if isinstance(m, nn.Linear):
                nn.init.kaiming_uniform_(m.weight, nonlinearity=_GAIN[act])
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def online_summary(values: list[float] | np.ndarray, *, higher_is_better: bool = True,
                   fraction: float = 0.1) -> dict[str, float]:
    """Means of a per-task online curve: ``first`` and ``last`` (the first and last
    ``fraction`` of tasks, at least one), ``mean`` (all tasks = total online accuracy when
    every task has the same updates, Kumar et al. 2023) and ``drop`` (``first - last``;
    ``last - first`` for a loss, so a positive drop is always lost plasticity)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return {"first": math.nan, "last": math.nan, "mean": math.nan, "drop": math.nan}
    n = max(1, int(round(fraction * v.size)))
    first, last = float(v[:n].mean()), float(v[-n:].mean())
    return {"first": first, "last": last, "mean": float(v.mean()),
            "drop": first - last if higher_is_better else last - first}


class LongStream:
    """One long stream (see the module docstring): data, net, batches, loss with the online
    meter, and the evaluation at task boundaries. One instance runs one trial at a time."""

    def __init__(self, spec: StreamSpec | str) -> None:
        self.spec = parse_stream(spec)
        if not self.spec.long:
            raise WorkloadError(f"stream {self.spec.name!r} is not a long stream")
        self.name, self.kind = self.spec.name, self.spec.kind
        self.tasks, self.steps_per_task = self.spec.tasks, self.spec.steps_per_task
        self.batch_size = int(self.spec.get("batch"))
        self.budget_steps = self.tasks * self.steps_per_task
        self.eval_every = self.steps_per_task
        self.probe, self.probe_every = int(self.spec.get("probe")), int(self.spec.get("probe_every"))
        self.metric = "accuracy" if self.kind == "online" else "loss"
        self._data: tuple[torch.Tensor, torch.Tensor] | None = None
        self._plan: dict[str, torch.Tensor] = {}
        self.start(0)

    @property
    def key(self) -> str:
        return self.spec.key

    def stage_ends(self) -> list[int]:
        return self.spec.stage_ends()

    # -- data ------------------------------------------------------------------------------
    def data(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The classification data on the CPU: features standardized by one scalar mean and
        std (so a permutation keeps the scale), and labels."""
        if self._data is None:
            if self.spec.get("data") == "mnist1d":
                from steplab.workloads.mnist1d_data import dataset

                d = dataset()
                x, y = np.concatenate([d["x"], d["x_test"]]), np.concatenate([d["y"], d["y_test"]])
            else:
                from sklearn.datasets import load_digits

                x, y = load_digits(return_X_y=True)
            x = (x - x.mean()) / x.std()
            self._data = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.long)
        return self._data

    @property
    def inputs(self) -> int:
        return BITS if self.kind == "regression" else int(self.data()[0].shape[1])

    def plan(self, seed: int) -> dict[str, torch.Tensor]:
        """What each task changes, for ``tasks + 1`` tasks (the last one probed at the end):
        ``perm`` (input or label permutation per task) or, for the regression, ``slow`` bits
        per period plus the target net ``w`` (units x 21), ``v`` (units)."""
        if self._plan.get("seed") is not None and int(self._plan["seed"]) == seed:
            return self._plan
        gen = torch.Generator().manual_seed(1_000_003 + seed)
        n = self.tasks + 1
        plan: dict[str, torch.Tensor] = {"seed": torch.tensor(seed)}
        if self.name == "input-permuted":
            plan["perm"] = torch.stack([torch.randperm(self.inputs, generator=gen) for _ in range(n)])
        elif self.name == "label-permuted":
            plan["perm"] = torch.stack([torch.randperm(10, generator=gen) for _ in range(n)])
        else:
            plan["w"] = torch.randint(0, 2, (TARGET_UNITS, BITS + 1), generator=gen).float() * 2 - 1
            plan["v"] = torch.randint(0, 2, (TARGET_UNITS,), generator=gen).float() * 2 - 1
            slow = [torch.randint(0, 2, (SLOW,), generator=gen).float()]
            for _ in range(n - 1):
                if self.spec.get("flip") == "one":
                    nxt = slow[-1].clone()
                    i = int(torch.randint(0, SLOW, (1,), generator=gen))
                    nxt[i] = 1 - nxt[i]
                else:
                    nxt = torch.randint(0, 2, (SLOW,), generator=gen).float()
                slow.append(nxt)
            plan["slow"] = torch.stack(slow)
        self._plan = plan
        return plan

    def target(self, plan: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """The regression target of bits ``x`` (batch x 20): ``sum_i v_i [w_i . (x, 1) >
        beta (m + 1) - S_i]`` (Dohare et al.'s linear-threshold target net)."""
        w, v = plan["w"].to(x.device), plan["v"].to(x.device)
        xb = torch.cat([x, torch.ones(len(x), 1, device=x.device)], dim=1)
        theta = BETA * (BITS + 1) - (w < 0).sum(dim=1)
        return ((xb @ w.T > theta).float() @ v)[:, None]

    def task_batch(self, plan: dict[str, torch.Tensor], task: int, ids: torch.Tensor | None,
                   gen: torch.Generator, size: int) -> Batch:
        """``size`` examples of ``task``: rows ``ids`` of the data transformed by the task's
        permutation, or fresh regression inputs of the task's period."""
        if self.kind == "regression":
            fast = torch.randint(0, 2, (size, BITS - SLOW), generator=gen).float()
            x = torch.cat([plan["slow"][task].expand(size, SLOW), fast], dim=1)
            return x, self.target(plan, x)
        x, y = self.data()
        x, y = x[ids], y[ids]
        if self.name == "input-permuted":
            return x[:, plan["perm"][task]], y
        return x, plan["perm"][task][y]

    def batches(self, seed: int, device: torch.device | str = "cpu") -> Iterator[Batch]:
        """Every training batch in order (task by task; the last task's forever), on
        ``device``; deterministic in ``seed``."""
        plan = self.plan(seed)
        gen = torch.Generator().manual_seed(seed)
        n = 0 if self.kind == "regression" else len(self.data()[1])
        order, cursor, task, u = torch.randperm(max(n, 1), generator=gen), 0, 0, 0
        resetting = self.spec.get("reset") == "shrink-perturb"
        while True:
            if resetting and u == 0 and task > 0:
                self.reset(task)
            ids = None
            if n:
                if cursor + self.batch_size > n:
                    order, cursor = torch.randperm(n, generator=gen), 0
                ids, cursor = order[cursor:cursor + self.batch_size], cursor + self.batch_size
            x, y = self.task_batch(plan, task, ids, gen, self.batch_size)
            yield x.to(device), y.to(device)
            u += 1
            if u == self.steps_per_task and task < self.tasks - 1:
                task, u = task + 1, 0

    # -- model, loss and the online meter ----------------------------------------------------
    def init_model(self, seed: int) -> nn.Module:
        """A fresh net (the same seed gives the same weights); resets the online meter."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = self._net()
        self.start(seed)
        self._model = model
        return model

    def _net(self) -> LongNet:
        return LongNet(self.inputs, 1 if self.kind == "regression" else 10, int(self.spec.get("width")),
                       int(self.spec.get("depth")), str(self.spec.get("act")))

    def reset(self, task: int) -> None:
        """The task-boundary reset of ``reset=shrink-perturb`` before ``task`` (> 0) trains:
        Ash & Adams 2020 (NeurIPS, §4), ``theta <- shrink theta + noise theta_fresh`` with a
        fresh net drawn from the seed and the task (:func:`steplab.optim.regularized.shrink_perturb`)."""
        from steplab.optim.regularized import shrink_perturb

        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(10_007 * (self.seed + 1) + task)
            fresh = self._net()
            shrink_perturb(self._model, float(self.spec.get("shrink")), float(self.spec.get("noise")), fresh)
        self.resets += 1

    def start(self, seed: int) -> None:
        """Reset the online meter for a run with ``seed``."""
        self.seed, self.steps, self.resets = seed, 0, 0
        self._sums = [0.0, 0.0, 0]  # correct, loss * examples, examples of the current task
        self.curve: list[float] = []

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        """Cross-entropy (MSE for the regression); in train mode (an update's forward pass)
        the predictions also count toward the current task's online accuracy."""
        x, y = batch
        out = model(x)
        loss = F.mse_loss(out, y) if self.kind == "regression" else F.cross_entropy(out, y)
        if model.training:
            with torch.no_grad():
                if self.kind == "online":
                    self._sums[0] += float((out.argmax(-1) == y).sum())
                self._sums[1] += float(loss) * len(y)
                self._sums[2] += len(y)
            self.steps += 1
        return loss

    def evaluate(self, model: nn.Module, device: torch.device | str) -> dict[str, float]:
        """At a task end: the finished task's online metrics (``online/accuracy``,
        ``online/loss``, ``online/task``); at a probed task start (and step 0, and the end):
        the probe metrics on the new task's first ``probe`` examples. The caller sets eval
        mode; nothing here draws from the global random state."""
        out: dict[str, float] = {}
        done, boundary = self.steps, self.steps % self.steps_per_task == 0
        if done and boundary:
            correct, loss_sum, count = self._sums
            out["online/task"] = float(done // self.steps_per_task - 1)
            out["online/loss"] = loss_sum / max(count, 1)
            if self.kind == "online":
                out["online/accuracy"] = correct / max(count, 1)
            self.curve.append(out[f"online/{self.metric}"])
            self._sums = [0.0, 0.0, 0]
        task = done // self.steps_per_task
        if boundary and (task % self.probe_every == 0 or task >= self.tasks):
            x, _ = self.probe_batch(task, device)
            out.update(probe_metrics(model, lambda: model(x)))
        if done >= self.budget_steps:
            s = online_summary(self.curve, higher_is_better=self.kind == "online")
            out.update({f"online/{k}": v for k, v in s.items()})
        return out

    def probe_batch(self, task: int, device: torch.device | str = "cpu") -> Batch:
        """The fixed probe of ``task``: its first ``probe`` examples (the data in a fixed
        seeded order; fresh inputs of the period, seeded by the task, for the regression)."""
        plan = self.plan(self.seed)
        gen = torch.Generator().manual_seed(7_000_000 + task)
        if self.kind == "regression":
            x, y = self.task_batch(plan, task, None, gen, self.probe)
        else:
            n = len(self.data()[1])
            ids = torch.randperm(n, generator=torch.Generator().manual_seed(4242))[:self.probe]
            x, y = self.task_batch(plan, task, ids, gen, len(ids))
        return x.to(device), y.to(device)
