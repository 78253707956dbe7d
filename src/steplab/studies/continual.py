"""Continual training: streams of tasks, replay, stage schedules and continual evaluation.

A :class:`Stream` is a sequence of experiences (tasks), each with its own training data and
a fixed, seeded evaluation subset, trained one after the other for ``steps_per_task``
updates each. :func:`run_continual` trains one stream as *one* trial in the store (workload
``stream``, variant = the stream's key, e.g. ``split-digits+replay=0.05``): it evaluates
before any training, every ``eval_every`` updates on every task seen so far and at every
stage end on all tasks, records each task's metric as eval rows ``task{i}/accuracy`` (or
``task{i}/loss``), and stores the metrics of :mod:`steplab.analysis.continual_metrics`
(``continual/acc``, ``continual/min_acc``...) in the trial's final metrics. The learning
rate follows a stage schedule (:mod:`steplab.schedules.stages`). The loop is
:func:`steplab.training.loop.run_trial`'s, with its pieces (device, seeding, the recorder that keeps
evaluation time apart from training time, divergence check, failures as recorded outcomes).

Built-in streams (all offline, CPU-sized; every one has a *tuning twin*, ``+twin``: the same
configuration on other data, for the "Reality Check" protocol of Cha & Cho 2024 -- tune on
the twin, report on the stream):

==================  ====================================================================
``split-digits``    sklearn's 8x8 digits in 5 tasks of 2 classes (0/1, 2/3, ...),
                    class-incremental (one 10-way head); ``scenario=task`` is the
                    task-incremental variant with a 2-way head per task. Twin: another
                    class pairing and train/test split.
``permuted-digits`` domain-incremental: ``tasks`` (5) fixed pixel permutations of all
                    digits (task 1 unpermuted). Twin: other permutations.
``rotated-digits``  domain-incremental: task ``i`` rotated by ``i * angle`` degrees
                    (default ``angle = 180 / tasks``); ``tasks=2,angle=A`` is the 2-task
                    variant whose dissimilarity is a dial. Twin: mirrored digits.
``charlm-shift``    a character LM (``charlm``'s transformer) trained on Python source of
                    the standard library, then continued on English prose (the stdlib's
                    ``pydoc_data`` topics): the continual pre-training proxy; the metric
                    is each domain's validation loss. Twin: the other half of both texts.
==================  ====================================================================

Replay (``replay=f``): from the second task on, ``f`` of every batch comes from earlier
tasks at equal total compute (the batch size is fixed): batch ``u`` of a stage carries
``floor((u + 1) f B) - floor(u f B)`` replayed examples, so after ``n`` batches exactly
``floor(n f B)`` (Ibrahim et al. 2024 replay at fixed token budget). Replayed examples are
drawn uniformly from a buffer: every earlier example (``buffer=all``), or experience replay
with ``buffer=M`` examples kept by reservoir sampling (Vitter 1985, Algorithm R; the
"tiny episodic memories" of Chaudhry et al. 2019), filled with each task's training set at
its end.

The streams' data and models are in :mod:`steplab.workloads.stream_data`, the metrics in
:mod:`steplab.analysis.continual_metrics`, the stage schedules in :mod:`steplab.schedules.stages`;
:mod:`steplab.workloads.stream` wraps a stream as a workload for ``steplab bench``.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import math
import socket
from collections.abc import Callable, Iterable, Iterator, Mapping
from fractions import Fraction
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from steplab.schedules import stages as continual_schedules
from steplab.optim import optimizers
from steplab import schedules
from steplab.algorithms import ResolvedAlgorithm
from steplab.workloads.stream_data import CONTEXT, VOCAB, DigitsNet, StreamData, digits_data, lm_data
from steplab.analysis.continual_metrics import History, accuracy_matrix, summarize
from steplab.errors import SpecError, WorkloadError
from steplab.results import TrialResult, TrialSpec
from steplab.training.loop import Progress, TrainConfig, pick_device, seed_everything, train_step

__all__ = ["STREAMS", "ContinualResult", "Stream", "StreamSpec", "get_stream", "history_of", "parse_stream",
           "run_continual", "stage_algorithm", "stream_names"]

Batch = tuple[torch.Tensor, ...]


# ----------------------------------------------------------------------------------
# stream specs
# ----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class StreamInfo:
    """A built-in stream: its kind, description, and default options."""

    name: str
    kind: str  # "classification" or "lm"
    description: str
    defaults: dict[str, Any]


_COMMON = {"steps": 100, "batch": 32, "replay": 0.0, "buffer": 200, "eval_every": 1, "eval_subset": 1000,
           "twin": False}
STREAMS: dict[str, StreamInfo] = {
    s.name: s
    for s in (
        StreamInfo("split-digits", "classification",
                   "digits in 5 tasks of 2 classes, class-incremental (scenario=task: a head per task)",
                   {**_COMMON, "scenario": "class"}),
        StreamInfo("permuted-digits", "classification", "digits under N pixel permutations, domain-incremental",
                   {**_COMMON, "tasks": 5}),
        StreamInfo("rotated-digits", "classification",
                   "digits rotated by i*angle degrees per task, domain-incremental (tasks=2: dial the angle)",
                   {**_COMMON, "tasks": 5, "angle": None}),
        StreamInfo("charlm-shift", "lm", "char LM continued from Python source to English prose (CPT proxy)",
                   {**_COMMON, "steps": 400, "buffer": "all", "eval_every": 10, "eval_subset": 64}),
    )
}
_KINDS = {"steps": int, "batch": int, "replay": float, "buffer": object, "eval_every": int, "eval_subset": int,
          "twin": bool, "scenario": str, "tasks": int, "angle": float}


def stream_names() -> list[str]:
    """The built-in streams, sorted."""
    return sorted(STREAMS)


def _info(name: str) -> StreamInfo:
    if name not in STREAMS:
        raise WorkloadError(f"unknown stream {name!r}; known: {', '.join(stream_names())}")
    return STREAMS[name]


def _fmt(v: Any) -> str:
    return ("true" if v else "false") if isinstance(v, bool) else (f"{v:g}" if isinstance(v, float) else str(v))


@dataclasses.dataclass(frozen=True)
class StreamSpec:
    """A stream and its options (``parse_stream("split-digits+replay=0.05")``): ``steps``
    per task, ``batch`` size, ``replay`` fraction of each batch, replay ``buffer`` size
    (``"all"``: every earlier example), ``eval_every`` updates, ``eval_subset`` (examples, or
    windows for an LM stream, per task), ``twin``, and per stream ``scenario``, ``tasks``,
    ``angle``. :attr:`key` is the canonical text (options that differ from the defaults)."""

    name: str
    options: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        info = _info(self.name)
        opts = dict(self.options)
        for key in opts:
            if key not in info.defaults:
                raise SpecError(f"stream {self.name!r} has no option {key!r}; it takes: {', '.join(sorted(info.defaults))}")
        full = {**info.defaults, **opts}
        _validate(self.name, full)
        clean = tuple(sorted((k, v) for k, v in opts.items() if v != info.defaults[k]))
        object.__setattr__(self, "options", clean)

    def get(self, key: str, default: Any = None) -> Any:
        """The value of option ``key`` (the stream's default when not set; ``default`` for an
        option the stream does not have)."""
        return dict(self.options).get(key, STREAMS[self.name].defaults.get(key, default))

    @property
    def kind(self) -> str:
        return STREAMS[self.name].kind

    @property
    def key(self) -> str:
        return self.name + "".join(f"+{k}={_fmt(v)}" for k, v in self.options)

    @property
    def tasks(self) -> int:
        if self.name == "split-digits":
            return 5
        if self.name == "charlm-shift":
            return 2
        return int(self.get("tasks"))

    @property
    def total_steps(self) -> int:
        return self.tasks * int(self.get("steps"))

    def stage_ends(self) -> list[int]:
        """``[B_1, ..., B_T]``: the updates after which each task ends."""
        n = int(self.get("steps"))
        return [n * (j + 1) for j in range(self.tasks)]

    def with_options(self, **changes: Any) -> StreamSpec:
        """A copy with ``changes`` applied to the options (validated again)."""
        return StreamSpec(self.name, tuple({**dict(self.options), **changes}.items()))


def _validate(name: str, o: dict[str, Any]) -> None:
    where = f"stream {name!r}"
    for key in ("steps", "batch", "eval_every", "eval_subset", "tasks"):
        if key in o and (isinstance(o[key], bool) or not isinstance(o[key], int) or o[key] < 1):
            raise SpecError(f"{where}: {key} must be a positive integer, got {o[key]!r}")
    if "tasks" in o and o["tasks"] < 2:
        raise SpecError(f"{where}: tasks must be >= 2 for a continual stream, got {o['tasks']}")
    r = o["replay"]
    if isinstance(r, bool) or not isinstance(r, (int, float)) or not 0.0 <= r < 1.0:
        raise SpecError(f"{where}: replay is the fraction of each batch from earlier tasks, in [0, 1); got {r!r}")
    b = o["buffer"]
    if b != "all" and (isinstance(b, bool) or not isinstance(b, int) or b < 1):
        raise SpecError(f"{where}: buffer must be a positive number of examples or 'all', got {b!r}")
    if o["steps"] % o["eval_every"]:
        raise SpecError(f"{where}: eval_every ({o['eval_every']}) must divide the steps per task ({o['steps']}) "
                        "so that every task end is an evaluation")
    if not isinstance(o["twin"], bool):
        raise SpecError(f"{where}: twin must be true or false, got {o['twin']!r}")
    if o.get("scenario", "class") not in ("class", "task"):
        raise SpecError(f"{where}: scenario must be class or task, got {o['scenario']!r}")
    a = o.get("angle")
    if a is not None and (isinstance(a, bool) or not isinstance(a, (int, float)) or not math.isfinite(a)):
        raise SpecError(f"{where}: angle must be a number of degrees, got {a!r}")


def _value(key: str, text: str, stream: str) -> Any:
    kind = _KINDS.get(key)
    text = text.strip()
    try:
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
        if kind is bool:
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError
            return text.lower() in ("true", "1")
        if key == "buffer":
            return "all" if text.lower() == "all" else int(text)
    except ValueError:
        what = {int: "an integer", float: "a number", bool: "true or false"}.get(kind, "a number or 'all'")
        raise SpecError(f"stream {stream!r}: option {key}={text!r} must be {what}") from None
    return text


def parse_stream(text: str | StreamSpec) -> StreamSpec:
    """``"NAME[+key=value...]"`` (``+twin`` alone means ``twin=true``) -> :class:`StreamSpec`.
    Raises ``WorkloadError`` for an unknown stream, ``SpecError`` for a bad option."""
    if isinstance(text, StreamSpec):
        return text
    name, *parts = [p.strip() for p in str(text).strip().split("+")]
    info = _info(name)
    opts: dict[str, Any] = {}
    for part in parts:
        key, eq, value = part.partition("=")
        key = key.strip().replace("-", "_")
        if not eq:
            if key != "twin":
                raise SpecError(f"stream {name!r}: expected +key=value, got {part!r}")
            value = "true"
        if key not in info.defaults:
            raise SpecError(f"stream {name!r} has no option {key!r}; it takes: {', '.join(sorted(info.defaults))}")
        opts[key] = _value(key, value, name)
    return StreamSpec(name, tuple(opts.items()))


# ----------------------------------------------------------------------------------
# the stream
# ----------------------------------------------------------------------------------
def _replay_counts(batch: int, fraction: float) -> Callable[[int], int]:
    """Replayed examples in a stage's batch ``u``: ``floor((u+1) f B) - floor(u f B)``,
    exact in rational arithmetic (``0.05`` is ``1/20``, not a binary float)."""
    f = Fraction(str(fraction)) * batch
    return lambda u: math.floor((u + 1) * f) - math.floor(u * f)


class Stream:
    """The tasks of a :class:`StreamSpec` with their data, model, loss and evaluation.

    ``batches(seed, device)`` is the endless, seeded sequence of training batches of the whole
    stream (task by task, with replay); a batch is ``(x, y, task)`` for the digit streams
    and ``(windows, task)`` for ``charlm-shift``, ``task`` the 0-based task of each example."""

    def __init__(self, spec: StreamSpec | str) -> None:
        self.spec = parse_stream(spec)
        self.kind = self.spec.kind
        self.tasks = self.spec.tasks
        self.steps_per_task = int(self.spec.get("steps"))
        self.batch_size = int(self.spec.get("batch"))
        self.replay = float(self.spec.get("replay"))
        self.buffer = self.spec.get("buffer")
        self.eval_every = int(self.spec.get("eval_every"))
        self.total_steps = self.spec.total_steps
        self.metric = "accuracy" if self.kind == "classification" else "loss"
        self._data: dict[str, StreamData] = {}

    @property
    def key(self) -> str:
        return self.spec.key

    def stage_ends(self) -> list[int]:
        return self.spec.stage_ends()

    def data(self, device: torch.device | str = "cpu") -> StreamData:
        """The stream's tensors on ``device`` (built once, then cached per device)."""
        key = str(device)
        if key not in self._data:
            if "cpu" not in self._data:
                self._data["cpu"] = digits_data(self.spec) if self.kind == "classification" else lm_data(self.spec)
            if key != "cpu":
                self._data[key] = self._data["cpu"].to(torch.device(key))
        return self._data[key]

    def eval_sizes(self) -> list[int]:
        """Examples (windows for an LM stream) in each task's evaluation subset."""
        return [len(x) for x, _ in self.data().eval_sets]

    # -- model, batches, loss, evaluation --------------------------------------------------
    def init_model(self, seed: int) -> nn.Module:
        """A fresh model (the same seed gives the same weights)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            if self.kind == "lm":
                from steplab.workloads.charlm import CharTransformer

                return CharTransformer(len(VOCAB), 1, "gelu")
            return DigitsNet(heads=self.tasks if self.spec.get("scenario") == "task" else 0)

    def _make(self, ids: torch.Tensor, task: torch.Tensor, data: StreamData) -> Batch:
        dev = data.x.device
        ids, task = ids.to(dev), task.to(dev)
        if self.kind == "lm":
            return data.x[ids[:, None] + torch.arange(CONTEXT + 1, device=dev)], task
        return data.x[ids], data.y[ids], task

    def batches(self, seed: int, device: torch.device | str = "cpu") -> Iterator[Batch]:
        """Every training batch of the stream in order, then the last task's forever (see the
        module docstring for the replay composition). Deterministic in ``seed``; the data is
        built before the first batch is asked for."""
        data = self.data(device)
        return (self._make(ids, task, data) for ids, task in self.composition(seed))

    def composition(self, seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """What :meth:`batches` gathers: per batch, the example ids (rows of the stream's
        training data, window starts for an LM stream) and the 0-based task of each, current
        task first, then the replayed examples."""
        data = self.data()
        gen = torch.Generator().manual_seed(seed)
        count = _replay_counts(self.batch_size, self.replay)
        buf_ids = torch.empty(0, dtype=torch.long)
        buf_task = torch.empty(0, dtype=torch.long)
        seen = 0  # examples offered to the reservoir so far
        for t in itertools.count():
            stage = min(t, self.tasks - 1)
            pool = data.pools[stage]
            order, cursor = torch.randperm(len(pool), generator=gen), 0
            for u in itertools.count() if t == self.tasks - 1 else range(self.steps_per_task):
                r = count(u) if len(buf_ids) else 0
                need = self.batch_size - r
                parts = []
                while need:
                    if cursor == len(order):
                        order, cursor = torch.randperm(len(pool), generator=gen), 0
                    take = min(need, len(order) - cursor)
                    parts.append(pool[order[cursor:cursor + take]])
                    cursor, need = cursor + take, need - take
                cur = torch.cat(parts)
                ids, task = cur, torch.full((len(cur),), stage, dtype=torch.long)
                if r:
                    pick = torch.randint(len(buf_ids), (r,), generator=gen)
                    ids, task = torch.cat([cur, buf_ids[pick]]), torch.cat([task, buf_task[pick]])
                yield ids, task
            # the task is over: its training examples enter the replay buffer
            if self.buffer == "all":
                buf_ids = torch.cat([buf_ids, pool])
                buf_task = torch.cat([buf_task, torch.full((len(pool),), stage, dtype=torch.long)])
            else:
                buf_ids, buf_task, seen = _reservoir(buf_ids, buf_task, pool, stage, seen, int(self.buffer), gen)

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        """Mean cross-entropy over the batch (current and replayed examples alike)."""
        if self.kind == "lm":
            windows = batch[0]
            logits = model(windows[:, :-1])
            return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), windows[:, 1:].reshape(-1))
        x, y, task = batch
        return F.cross_entropy(model(x, task), y)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, device: torch.device | str, tasks: Iterable[int]) -> dict[str, float]:
        """``task{i}/accuracy`` and ``task{i}/loss`` (``task{i}/loss`` only for an LM stream)
        on the fixed subsets of ``tasks``; the caller sets eval mode."""
        data = self.data(device)
        out: dict[str, float] = {}
        for i in tasks:
            x, y = data.eval_sets[i]
            if self.kind == "lm":
                logits = model(x[:, :-1])
                out[f"task{i}/loss"] = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1)).item()
            else:
                logits = model(x, torch.full((len(x),), i, dtype=torch.long, device=x.device))
                out[f"task{i}/accuracy"] = (logits.argmax(-1) == y).float().mean().item()
                out[f"task{i}/loss"] = F.cross_entropy(logits, y).item()
        return out

    def scores(self, metrics: Mapping[str, float]) -> dict[int, float]:
        """``{i: a_i}`` from evaluation metrics: the accuracy, or the negative loss."""
        out = {}
        for i in range(self.tasks):
            v = metrics.get(f"task{i}/{self.metric}")
            if v is not None:
                out[i] = v if self.metric == "accuracy" else -v
        return out

    def seen(self, step: int) -> list[int]:
        """Tasks evaluated after ``step`` updates: all of them at step 0 and at task ends
        (``b_i`` and the rows of ``R``), else the tasks trained so far."""
        ends = self.stage_ends()
        if step == 0 or step in ends:
            return list(range(self.tasks))
        return list(range(min(self.tasks, step // self.steps_per_task + 1)))


def _reservoir(ids: torch.Tensor, task: torch.Tensor, pool: torch.Tensor, stage: int, seen: int, size: int,
               gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Offer ``pool`` (in a seeded random order) to a reservoir of ``size`` examples that has
    seen ``seen`` before (Vitter 1985, Algorithm R: the ``c``-th offer, 0-based, replaces slot
    ``r ~ U{0..c}`` when ``r < size``)."""
    items = pool[torch.randperm(len(pool), generator=gen)]
    ids, task = ids.clone(), task.clone()
    fill = max(0, min(size - len(ids), len(items)))
    ids = torch.cat([ids, items[:fill]])
    task = torch.cat([task, torch.full((fill,), stage, dtype=torch.long)])
    rest = items[fill:]
    counts = torch.arange(seen + fill, seen + fill + len(rest), dtype=torch.float64)
    slots = torch.floor(torch.rand(len(rest), generator=gen, dtype=torch.float64) * (counts + 1)).long()
    for j in torch.nonzero(slots < size).flatten().tolist():
        ids[slots[j]] = rest[j]
        task[slots[j]] = stage
    return ids, task, seen + len(items)


def get_stream(text: str | StreamSpec) -> Stream:
    """The stream named by ``text`` (``"split-digits+replay=0.05"``)."""
    return Stream(text)


# ----------------------------------------------------------------------------------
# one continual run
# ----------------------------------------------------------------------------------
@dataclasses.dataclass
class ContinualResult:
    """A finished continual run: the stored trial, the curves ``a_i(t)``, ``R`` (row 0 before
    training) and the metrics (also in ``trial.final_metrics``)."""

    trial: TrialResult
    history: History
    matrix: np.ndarray
    metrics: dict[str, float]
    stream: str
    schedule: dict[str, Any]
    restores: list[int]


def stage_algorithm(algorithm: ResolvedAlgorithm, stream: Stream, stage_schedule: str | Mapping[str, Any] | None) -> ResolvedAlgorithm:
    """``algorithm`` with its schedule replaced by ``stage_schedule`` (``rewarm``,
    ``constant``, ``infinite``, ``wsd``, optionally ``NAME:key=value,...``) fitted to the
    stream's stages, and named ``ALGO+POLICY``; ``None`` keeps the algorithm's own schedule
    over the whole stream."""
    if stage_schedule is None:
        return algorithm
    spec = continual_schedules.policy_spec(stage_schedule, stages=stream.tasks)
    policy = spec["name"].removeprefix("stages_")
    return dataclasses.replace(algorithm, schedule=spec, name=f"{algorithm.name}+{policy}")


def run_continual(
    stream: Stream | StreamSpec | str,
    algorithm: ResolvedAlgorithm,
    seed: int = 0,
    *,
    stage_schedule: str | Mapping[str, Any] | None = "rewarm",
    restore: bool = True,
    store: Any = None,
    config: TrainConfig | None = None,
    progress: Progress | None = None,
    name: str | None = None,
    study_id: int | None = None,
    index: int = 0,
) -> ContinualResult:
    """Train ``algorithm`` on every task of ``stream`` in turn and record one trial.

    Evaluation (model in eval mode, no gradients, time kept apart from training time): all
    tasks before the first update (``b_i``) and at every task end (the rows of ``R``), the
    tasks seen so far every ``eval_every`` updates; it draws no random numbers, so it never
    changes the trajectory. With ``stages_infinite`` and ``restore`` the model saved when
    each stage's anneal starts is loaded back when the next stage begins (the annealed model
    is the evaluated, *released* one; its anneal updates are counted in
    ``continual/discarded_steps``). ``config`` supplies the device, threads, norm recording
    and divergence factor (``stop_at_target``/``eval_steps`` do not apply). A run that
    diverges (a non-finite loss, or one above ``divergence_factor`` times the first loss of
    its task: a new class's loss jumps at the switch by design) or raises is a recorded
    outcome, as in :func:`steplab.training.loop.run_trial`."""
    from steplab.training.recorder import Recorder, package_versions

    cfg = config or TrainConfig(stop_at_target=False)
    stream = stream if isinstance(stream, Stream) else Stream(stream)
    algo = stage_algorithm(algorithm, stream, stage_schedule)
    if algo.label_smoothing:
        raise SpecError(f"algorithm {algo.name!r} sets label_smoothing, which continual runs do not apply; set it to 0")
    device = pick_device(cfg.device)
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    total, ends = stream.total_steps, stream.stage_ends()
    schedule = algo.build_schedule(total)
    releases = continual_schedules.anneal_starts(algo.schedule, total) if restore else {}
    spec = TrialSpec(workload="stream", variant=stream.key, algorithm=algo.name, algorithm_spec=algo.to_dict(),
                     hyperparameters=dict(algo.hyperparameters), seed=seed, budget_steps=total, study_id=study_id,
                     index=index, stop_at_target=False)
    trial_id = None
    if store is not None:
        trial_id = store.start_trial(spec, name=name, host=socket.gethostname(), versions=package_versions(),
                                     device=str(device))

    seed_everything(seed)
    model = stream.init_model(seed).to(device)
    model.train()
    opt = algo.build_optimizer(model)
    lr_scheduler = schedules.to_lr_scheduler(opt, schedule)
    optimizers.train_mode(opt)
    batches = stream.batches(seed, device)
    batches = itertools.chain([next(batches)], batches)  # data built before the clock starts
    rec = Recorder(opt, store=store, trial_id=trial_id, grad_norm=cfg.record_norms, l1=cfg.record_norms,
                   update_norm=cfg.record_norms)
    params = [p for p in model.parameters() if p.requires_grad]
    needs_loss = optimizers.needs_loss(opt)
    history = History(list(ends))
    evals = 0

    def evaluate(step: int) -> dict[str, float]:
        nonlocal evals
        with rec.evaluating(), optimizers.eval_mode(opt):
            model.eval()
            metrics = stream.evaluate(model, device, stream.seen(step))
            model.train()
        rec.eval(step=step, **metrics)
        history.add(step, stream.scores(metrics))
        evals += 1
        return metrics

    status, message, first_loss, steps_done = "budget", "", math.nan, 0
    saved: dict[str, torch.Tensor] | None = None
    restores: list[int] = []
    discarded = 0
    last: dict[str, float] = {}
    try:
        last = evaluate(0)
        for step in range(total):
            if step in releases:  # the non-annealed state the next stage continues from
                saved = copy.deepcopy(model.state_dict())
            loss = train_step(stream.loss, model, next(batches), opt, lr_scheduler,
                              grad_clip=algo.grad_clip, params=params, needs_loss=needs_loss)
            rec.log(loss)
            steps_done = step + 1
            value = float(loss.detach())
            if step == 0 or step in ends:  # a task switch: the new task's loss is the reference
                first_loss = value
            if not math.isfinite(value) or value > cfg.divergence_factor * max(first_loss, 1e-8):
                status, message = "diverged", f"loss {value:.4g} at step {step} (first loss {first_loss:.4g})"
                break
            if steps_done % stream.eval_every == 0 or steps_done in ends:
                last = evaluate(steps_done)
                if progress is not None:
                    progress(steps_done, total, last, rec.train_time_s)
            if saved is not None and steps_done in releases.values():
                model.load_state_dict(saved)
                discarded += steps_done - next(k for k, v in releases.items() if v == steps_done)
                restores.append(steps_done)
                saved = None
    except (KeyboardInterrupt, SystemExit):
        rec.close()
        raise
    except Exception as e:  # a broken run is a recorded outcome, not a crash
        status, message = "failed", f"{type(e).__name__}: {e}".replace("\n", " ")[:500]
    rec.close()

    summary = summarize(history)
    sizes = stream.eval_sizes()
    final = {**last, **summary,
             "continual/eval_every": float(stream.eval_every), "continual/eval_subset": float(min(sizes)),
             "continual/evals": float(evals), "continual/tasks": float(stream.tasks),
             "continual/replay": stream.replay, "continual/discarded_steps": float(discarded)}
    result = TrialResult(spec=spec, status=status, steps=steps_done,  # type: ignore[arg-type]
                         train_time_s=rec.train_time_s, eval_time_s=rec.eval_time_s, final_metrics=final,
                         message=message, device=str(device), host=socket.gethostname(), versions=package_versions(),
                         id=trial_id)
    if store is not None and trial_id is not None:
        store.finish_trial(trial_id, result)
    return ContinualResult(result, history, accuracy_matrix(history), summary, stream.key, dict(algo.schedule), restores)


def history_of(store: Any, trial_id: int) -> tuple[History, Stream]:
    """The curves ``a_i(t)`` of a stored continual trial (workload ``stream``), rebuilt from
    its eval rows, with its stream (whose data is not loaded)."""
    trial = store.get_trial(trial_id)
    if trial.spec.workload != "stream":
        raise SpecError(f"trial {trial_id} is a {trial.spec.workload!r} run, not a continual one "
                        "(`steplab continual` records workload 'stream')")
    stream = Stream(trial.spec.variant)
    history = History(stream.stage_ends())
    by_step: dict[int, dict[str, float]] = {}
    for row in store.evals(trial_id):
        by_step.setdefault(row.step, {})[row.metric] = row.value
    for step in sorted(by_step):
        history.add(step, stream.scores(by_step[step]))
    return history, stream
