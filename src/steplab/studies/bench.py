"""The benchmark: suites, rulesets, planning, resuming and scoring (AlgoPerf, Dahl et al.
2023, "Benchmarking Neural Network Training Algorithms", arXiv 2306.07179).

* A **suite** names workloads (and variants) with their budgets.
* A **benchmark spec** (TOML or Python) names the suite, the algorithms, the ruleset, the
  number of tuning trials ``N`` and of independent studies ``S``.
* **External tuning** (AlgoPerf §4.2.1): per algorithm, workload and study, ``N``
  hyperparameter points drawn quasi-randomly (Optuna's scrambled Sobol sampler) from the
  algorithm's search space; a study's time is its fastest trial that reached the target;
  the workload's time is the median over studies.
* **Self-tuning** (§4.2.2): one trial per study with the algorithm's defaults and a budget
  three times the external one.

* **Refined algorithms**: ``refined(ALGO)`` (optionally ``refined(ALGO, tau=0.05, norm=l2)``)
  runs ALGO with its own schedule for the whole budget, refines a schedule from that run's
  gradient norms (Defazio et al. 2023, ``steplab.analysis.refine``) and runs ALGO again with it; the
  algorithm is scored twice, ``refined(ALGO)`` counting both passes and
  ``refined(ALGO) 2nd pass`` counting the second only.
* **Tradeoff curves** (``tradeoff = "cyclic"``, Portes et al. 2022, ``steplab.studies.tradeoff``): per
  algorithm and workload, one run of the algorithm's defaults (first seed) with cycles ending
  at 1/8, 1/4, 1/2 and all of the budget, evaluated at each cycle end, plus one separate run
  per cycle budget; stored as ``ALGO tradeoff:cyclic`` / ``ALGO tradeoff:separate`` trials,
  which time-to-target scoring skips. Refined algorithms get no curve.

Every trial is keyed by everything that determines it (``TrialSpec.key``); running a spec
again skips the trials already finished in the store and re-runs those a killed run left
``running``, so a killed benchmark resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from steplab import algorithms as algos
from steplab.analysis import scoring
from steplab.algorithms import space
from steplab.studies import tradeoff
from steplab import workloads
from steplab.errors import SpecError, StoreError
from steplab.training.jobs import FIRST_PASS, Job
from steplab.results import TrialResult, spec_digest
from steplab.store import Store

RULESETS = ("external", "self")
#: suffix of the view of a refined algorithm that counts its second pass only
SECOND_PASS = " 2nd pass"
#: options of ``refined(ALGO, ...)`` and their defaults (``steplab.analysis.refine.refine_trial``'s)
REFINE_DEFAULTS: dict[str, Any] = {"tau": 0.1, "norm": "auto"}
_REFINED = re.compile(r"^\s*refined\((.+)\)\s*$")
#: AlgoPerf's self-tuning ruleset allows 3x the external-tuning budget
SELF_TUNING_BUDGET_FACTOR = 3


# ---------------------------------------------------------------------------------- suites
@dataclasses.dataclass(frozen=True)
class SuiteEntry:
    """One workload (and variant) of a suite; ``budget_steps``/``target`` override the
    workload's own (a short suite needs a target its short budget can reach)."""

    workload: str
    variant: str = "base"
    budget_steps: int | None = None
    target: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        who = f"suite entry {self.workload!r}"
        if not isinstance(self.workload, str) or not isinstance(self.variant, str):
            raise SpecError(f"{who}: workload and variant must be names, got {self.workload!r}, {self.variant!r}")
        bs = self.budget_steps
        if bs is not None and (isinstance(bs, bool) or not isinstance(bs, int) or bs < 1):
            raise SpecError(f"{who}: budget_steps must be a positive integer or omitted, got {bs!r}")
        t = self.target
        if t is not None:
            if not isinstance(t, Mapping) or not {"metric", "value"} <= set(t) <= {"metric", "value", "mode"}:
                raise SpecError(f"{who}: target must be a table {{metric, value, mode}}, got {t!r}")
            v = t["value"]
            if not isinstance(t["metric"], str) or isinstance(v, bool) or not isinstance(v, (int, float)) \
                    or not abs(v) <= sys.float_info.max or t.get("mode", "max") not in ("max", "min"):
                raise SpecError(f"{who}: target needs a metric name, a finite value and mode max or min, got {t!r}")
        self.build()  # an unknown workload or variant fails here (WorkloadError)

    @property
    def key(self) -> str:
        return self.workload if self.variant == "base" else f"{self.workload}:{self.variant}"

    def build(self) -> workloads.Workload:
        target = workloads.Target(**self.target) if self.target else None
        return workloads.get(self.workload, self.variant, budget_steps=self.budget_steps, target=target)


@dataclasses.dataclass(frozen=True)
class Suite:
    name: str
    description: str
    entries: tuple[SuiteEntry, ...]


def _quick() -> Suite:
    """Every built-in workload at a lower bar: short budgets and targets that a good share
    of each baseline's search space reaches (the workloads' own targets are set at the pace
    of the *tuned* AdamW baseline, see their docstrings; with 2 quasi-random draws per study
    most studies would miss them). Sized so that `make demo` (6 baselines x 5 workloads x
    2 trials x 3 studies on 2 workers) takes about 5 minutes on 2 CPU cores."""

    def target(metric: str, value: float, mode: str) -> dict[str, Any]:
        return {"metric": metric, "value": value, "mode": mode}

    return Suite(
        "quick",
        "every built-in workload with short budgets and lower targets (the make demo suite)",
        (
            # 383/397 images; the tuned baseline passes it near step 120
            SuiteEntry("digits-mlp", target=target("validation/accuracy", 0.965, "max")),
            # the L-BFGS optimum's loss x 1.02 (the workload's own target is x 1.01)
            SuiteEntry("logreg", target=target("validation/loss", 0.3653, "min")),
            # grokking needs lr x weight decay >~ 0.07 within 300 steps: give it 600
            SuiteEntry("modarith", budget_steps=600, target=target("validation/accuracy", 0.9, "max")),
            SuiteEntry("teacher-student", target=target("validation/loss", 0.025, "min")),
            # AdamW lr 2e-2 reaches 1.44-1.46 at 800 steps, lr 5e-3 1.68 (2 seeds)
            SuiteEntry("charlm", budget_steps=600, target=target("validation/loss", 1.7, "min")),
        ),
    )


def _full() -> Suite:
    entries: list[SuiteEntry] = []
    for name in workloads.names():
        for variant in workloads.workload_class(name).variants:
            entries.append(SuiteEntry(name, variant))
    return Suite("full", "every built-in workload and variant at its full budget", tuple(entries))


SUITES: dict[str, Callable[[], Suite]] = {"quick": _quick, "full": _full}


def get_suite(name: str) -> Suite:
    if not isinstance(name, str) or name not in SUITES:
        raise SpecError(f"unknown suite {name!r}; known: {', '.join(SUITES)}")
    return SUITES[name]()


def parse_workload_list(text: str) -> tuple[SuiteEntry, ...]:
    """``"digits-mlp,charlm:deeper"`` -> suite entries (validated now)."""
    entries = []
    for item in (t.strip() for t in text.split(",")):
        if not item:
            continue
        name, _, variant = item.partition(":")
        workloads.get(name, variant or "base")  # raises WorkloadError when unknown
        entries.append(SuiteEntry(name, variant or "base"))
    if not entries:
        raise SpecError("--workloads is empty; give e.g. digits-mlp,logreg")
    return tuple(entries)


# ---------------------------------------------------------------------------------- spec
@dataclasses.dataclass(frozen=True)
class BenchSpec:
    """What a benchmark runs. ``name`` identifies it in the store (default: a hash of the
    rest), so running the same spec again resumes it."""

    suite: str = "quick"
    algorithms: tuple[str, ...] = ("adamw-cosine", "nadamw-cosine", "sgd-nesterov-cosine")
    ruleset: str = "external"
    trials: int = 2
    studies: int = 1
    seed: int = 0
    workloads: tuple[SuiteEntry, ...] | None = None  # overrides the suite's entries
    overrides: tuple[str, ...] = ()  # --set key=value applied to every algorithm
    name: str | None = None
    #: also measure accuracy-vs-time curves: "cyclic" (steplab.studies.tradeoff) or None
    tradeoff: str | None = None

    def __post_init__(self) -> None:
        if self.ruleset not in RULESETS:
            raise SpecError(f"unknown ruleset {self.ruleset!r}; use one of {', '.join(RULESETS)}")
        for field, v in (("trials", self.trials), ("studies", self.studies)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise SpecError(f"benchmark spec: {field!r} must be a positive integer, got {v!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**62:
            raise SpecError(f"benchmark spec: 'seed' must be an integer >= 0 (below 2**62), got {self.seed!r}")
        if self.name is not None and not isinstance(self.name, str):
            raise SpecError(f"benchmark spec: 'name' must be a string, got {self.name!r}")
        for field in ("algorithms", "overrides"):
            v = getattr(self, field)
            if not isinstance(v, (list, tuple)) or not all(isinstance(x, str) and x.strip() for x in v):
                raise SpecError(f"benchmark spec: {field!r} must be a list of non-empty strings, got {v!r}")
            object.__setattr__(self, field, tuple(v))
        if not self.algorithms:
            raise SpecError("benchmark spec: 'algorithms' is empty; name at least one (steplab algorithms list)")
        if self.workloads is not None:
            if not isinstance(self.workloads, (list, tuple)) or not all(isinstance(e, SuiteEntry) for e in self.workloads):
                raise SpecError(f"benchmark spec: 'workloads' must be suite entries, got {self.workloads!r}")
            if not self.workloads:
                raise SpecError("benchmark spec: 'workloads' is empty; name at least one (steplab workloads list)")
            object.__setattr__(self, "workloads", tuple(self.workloads))
        get_suite(self.suite)
        tradeoff.check_mode(self.tradeoff)

    def entries(self) -> tuple[SuiteEntry, ...]:
        return self.workloads if self.workloads is not None else get_suite(self.suite).entries

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["algorithms"] = list(self.algorithms)
        d["overrides"] = list(self.overrides)
        d["workloads"] = [dataclasses.asdict(e) for e in self.workloads] if self.workloads is not None else None
        if self.tradeoff is None:  # keeps the names and stored specs of older benchmarks
            del d["tradeoff"]
        return d

    def study_name(self) -> str:
        if self.name:
            return self.name
        digest = spec_digest(self.to_dict())
        return f"{self.suite}-{self.ruleset}-{digest}"


_SPEC_KEYS = {"suite", "algorithms", "ruleset", "trials", "studies", "seed", "workloads", "set", "name", "tradeoff"}


def load_spec(path: str | Path) -> BenchSpec:
    """A ``BenchSpec`` from a TOML file (see ``examples/bench-quick.toml``)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"benchmark spec {str(p)!r} not found") from None
    except OSError as e:
        raise SpecError(f"benchmark spec {str(p)!r} cannot be read ({e.strerror or e}); give a TOML file") from None
    except UnicodeDecodeError as e:
        raise SpecError(f"benchmark spec {str(p)!r} is not UTF-8 text ({e.reason}); save it as UTF-8 TOML") from None
    except ValueError as e:  # a NUL in the path
        raise SpecError(f"benchmark spec {str(p)!r} cannot be opened ({e}); fix the path") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"benchmark spec {str(p)!r} is not valid TOML: {e}") from None
    except (ValueError, RecursionError):  # an integer of > 4300 digits, nesting deeper than Python's stack
        raise SpecError(f"benchmark spec {str(p)!r}: a TOML integer is too long or arrays/tables nest too deeply; "
                        "fix the value") from None
    unknown = set(data) - _SPEC_KEYS
    if unknown:
        shown = (k if k.isprintable() else repr(k) for k in sorted(unknown))
        raise SpecError(f"benchmark spec {str(p)!r}: unknown key(s) {', '.join(shown)}; "
                        f"allowed: {', '.join(sorted(_SPEC_KEYS))}")
    kw: dict[str, Any] = {k: v for k, v in data.items()
                          if k in {"suite", "ruleset", "trials", "studies", "seed", "name", "tradeoff"}}
    if "tradeoff" in data and not isinstance(data["tradeoff"], str):
        raise SpecError(f"benchmark spec {str(p)!r}: 'tradeoff' must be a string such as \"cyclic\"")
    if "algorithms" in data:
        if not isinstance(data["algorithms"], list) or not all(isinstance(a, str) for a in data["algorithms"]):
            raise SpecError(f"benchmark spec {str(p)!r}: 'algorithms' must be a list of names or .toml paths")
        # algorithm files are relative to the spec
        kw["algorithms"] = tuple(_relative_algorithm(a, p.parent) for a in data["algorithms"])
    if "workloads" in data:
        w = data["workloads"]
        if isinstance(w, list) and all(isinstance(x, str) for x in w):
            w = ",".join(w)
        if not isinstance(w, str):
            raise SpecError(f"benchmark spec {str(p)!r}: 'workloads' must be a list of names like "
                            f"[\"digits-mlp\", \"charlm:deeper\"], got {w!r}")
        kw["workloads"] = parse_workload_list(w)
    if "set" in data:
        if not isinstance(data["set"], dict):
            raise SpecError(f"benchmark spec {str(p)!r}: 'set' must be a table of overrides like [set] grad_clip = 1.0")
        # scalars as JSON (which is TOML for them; keeps older specs' names), tables and arrays as TOML
        try:
            kw["overrides"] = tuple(f"{k}={algos._toml_value(v) if isinstance(v, (dict, list)) else json.dumps(v)}"
                                    for k, v in data["set"].items())
        except (SpecError, TypeError):
            raise SpecError(f"benchmark spec {str(p)!r}: a [set] value is a date or time; give a number, "
                            "string, array or table") from None
    try:
        spec = BenchSpec(**kw)
        for name in spec.algorithms:  # unknown algorithms and bad overrides fail now, not when it runs
            _algorithm(name, spec.overrides)
    except TypeError as e:
        raise SpecError(f"benchmark spec {str(p)!r}: {e}") from None
    except SpecError as e:
        raise SpecError(f"benchmark spec {str(p)!r}: {str(e).removeprefix('benchmark spec: ')}") from None
    return spec


def _relative_algorithm(name: str, folder: Path) -> str:
    """Algorithm ``.toml`` files in a spec are relative to the spec (also inside ``refined(...)``)."""
    refined = parse_refined(name)
    if refined is not None:
        inner, opts = refined
        return refined_name(_relative_algorithm(inner, folder), opts)
    return str((folder / name).resolve()) if name.endswith(".toml") else name


# ---------------------------------------------------------------------------------- plan
def parse_refined(name: str) -> tuple[str, dict[str, Any]] | None:
    """``"refined(adamw-linear, tau=0.05)"`` -> ``("adamw-linear", {"tau": 0.05, "norm": "auto"})``;
    ``None`` for a plain algorithm name."""
    m = _REFINED.match(name)
    if m is None:
        return None
    inner, *opts = [part.strip() for part in m.group(1).split(",")]
    options: dict[str, Any] = dict(REFINE_DEFAULTS)
    for opt in opts:
        key, eq, value = opt.partition("=")
        key = key.strip()
        if not eq or key not in options:
            raise SpecError(f"{name!r}: options of refined(...) are tau=FLOAT and norm=l1|l2|auto, got {opt!r}")
        if key == "tau":
            try:
                options["tau"] = float(value)
            except ValueError:
                raise SpecError(f"{name!r}: tau must be a number, got {value!r}") from None
            if not 0.0 <= options["tau"] <= 0.5:
                raise SpecError(f"{name!r}: tau must be in [0, 0.5], got {value}")
        else:
            if value.strip() not in ("l1", "l2", "auto"):
                raise SpecError(f"{name!r}: norm must be l1, l2 or auto, got {value!r}")
            options["norm"] = value.strip()
    if not inner:
        raise SpecError(f"{name!r}: name the algorithm to refine, e.g. refined(adamw-linear)")
    return inner, options


def refined_name(inner: str, options: Mapping[str, Any]) -> str:
    """The algorithm name trials of ``refined(inner)`` are stored and scored under."""
    extra = [f"{k}={options[k]}" for k, default in REFINE_DEFAULTS.items() if options[k] != default]
    return f"refined({', '.join([inner, *extra])})"


def _algorithm(name: str, overrides: Sequence[str]) -> algos.Algorithm:
    refined = parse_refined(name)
    if refined is not None:
        algo = _algorithm(refined[0], overrides)
        return dataclasses.replace(algo, name=refined_name(algo.name, refined[1]))
    algo = algos.get_algorithm(name)
    return algos.apply_overrides(algo, list(overrides)) if overrides else algo


def plan(spec: BenchSpec, study_id: int | None) -> list[Job]:
    """The trials of ``spec``, in a fixed order. Study ``s`` draws its ``N`` points with QMC
    seed ``seed + s`` and runs trial ``i`` with training seed ``seed + 1000 s + i``."""
    jobs: list[Job] = []
    entries = spec.entries()
    for entry in entries:
        entry.build()  # unknown workloads fail before anything runs
    for name in spec.algorithms:
        algo = _algorithm(name, spec.overrides)
        refined = parse_refined(name)
        for s in range(spec.studies):
            if spec.ruleset == "external":
                if not algo.search_space:
                    points = [algo.defaults()] * spec.trials
                else:
                    points = space.sample(algo.search_space, spec.trials, seed=spec.seed + s)
                    points = [{**algo.defaults(), **pt} for pt in points]
                budget_factor = 1
            else:
                points = [algo.defaults()]
                budget_factor = SELF_TUNING_BUDGET_FACTOR
            for i, point in enumerate(points):
                resolved = algo.with_hyperparameters(point)
                for entry in entries:
                    wl = entry.build()
                    jobs.append(
                        Job(
                            workload=entry.workload,
                            variant=entry.variant,
                            budget_steps=wl.budget_steps * budget_factor,
                            target=dataclasses.asdict(wl.target),
                            algorithm=resolved.to_dict(),
                            seed=spec.seed + 1000 * s + i,
                            study_id=study_id,
                            index=s * len(points) + i,
                            refine=refined[1] if refined else None,
                        )
                    )
    if spec.tradeoff == "cyclic":
        jobs.extend(tradeoff_jobs(spec, study_id))
    return jobs


def tradeoff_jobs(spec: BenchSpec, study_id: int | None) -> list[Job]:
    """The tradeoff trials of ``spec`` (``steplab.studies.tradeoff.jobs``): per plain algorithm and
    workload, the algorithm's defaults, the first seed, the workload's budget."""
    out: list[Job] = []
    for name in spec.algorithms:
        if parse_refined(name) is not None:
            continue
        algo = _algorithm(name, spec.overrides)
        resolved = algo.with_hyperparameters(algo.defaults())
        for entry in spec.entries():
            wl = entry.build()
            out.extend(tradeoff.jobs(entry.workload, resolved, total_steps=wl.budget_steps, seed=spec.seed,
                                     variant=entry.variant, target=dataclasses.asdict(wl.target),
                                     study_id=study_id))
    return out


@dataclasses.dataclass
class Benchmark:
    """A benchmark opened in a store: its study row and the jobs still to run."""

    spec: BenchSpec
    study_id: int
    jobs: list[Job]
    done: dict[str, TrialResult]

    @property
    def todo(self) -> list[Job]:
        return [j for j in self.jobs if j.key() not in self.done]


def open_benchmark(spec: BenchSpec, store: Store) -> Benchmark:
    """Find or create the study of ``spec``; remove the trials a killed worker left
    ``running`` (``Store.reap_stale``: only dead claims, so other processes working on the
    same study keep theirs)."""
    name = spec.study_name()
    found = store.find_study(name)
    if found is not None:
        if found["spec"] != spec.to_dict():
            raise SpecError(f"a different benchmark named {name!r} is already in the store; pick another name")
        study_id = int(found["id"])
        store.reap_stale(study_id)
    else:
        try:
            study_id = store.create_study(name, "benchmark", spec.to_dict())
        except StoreError:  # another process created it at the same moment
            found = store.find_study(name)
            if found is None or found["spec"] != spec.to_dict():
                raise
            study_id = int(found["id"])
    jobs = plan(spec, study_id)
    done = store.finished_by_key(study_id)
    return Benchmark(spec, study_id, jobs, done)


def run(bench: Benchmark, executor: Any, db_url: str, *, poll_s: float = 2.0,
        on_wait: Callable[[int], None] | None = None) -> Iterator[TrialResult]:
    """Run the benchmark's remaining jobs on ``executor``, yielding each result as it
    finishes (already stored by the worker).

    Several processes (or machines, on a shared database) may run the same benchmark at
    once: every job is claimed before it runs (``jobs.claim_and_run``), so each trial runs
    once. Jobs another live process holds are waited for, polling the store every
    ``poll_s`` seconds (``on_wait(n)`` is called with how many), and yielded when they
    finish there; one whose process died is claimed again and run here."""
    from steplab.store import open_store

    # a refined job's stored spec holds the refined schedule, so match results to jobs by
    # what identifies a trial within the study rather than by spec key
    keys = {(j.algorithm["name"], j.workload, j.variant, j.seed, j.index): j.key() for j in bench.jobs}
    while bench.todo:
        held = ran = 0
        for result in executor.run(bench.todo, db_url):
            if result.status == "running":  # another live worker holds it
                held += 1
                continue
            s = result.spec
            bench.done[keys.get((s.algorithm, s.workload, s.variant, s.seed, s.index), s.key())] = result
            ran += 1
            yield result
        if not held:
            if not ran:
                raise StoreError(f"{len(bench.todo)} trials of study {bench.study_id} ran but their results "
                                 "match no job of the benchmark: report this as a bug")
            continue
        if on_wait is not None:
            on_wait(held)
        time.sleep(poll_s)
        with open_store(db_url) as store:
            finished = store.finished_by_key(bench.study_id)
        for job in bench.todo:
            if job.key() in finished:
                bench.done[job.key()] = finished[job.key()]
                yield finished[job.key()]


# ---------------------------------------------------------------------------------- scores
def scored_trials(store: Store, study_id: int) -> list[TrialResult]:
    """The study's finished trials with ``spec.study_id`` set to their *tuning study* (the
    repetition ``s`` of the spec), which is what ``scoring.time_table`` groups by."""
    study = store.get_study(study_id)
    per_study = study["spec"]["trials"] if study["spec"].get("ruleset", "external") == "external" else 1
    out = []
    for t in store.list_trials(study_id=study_id):
        if t.status == "running" or t.spec.algorithm.endswith(FIRST_PASS) or tradeoff.is_tradeoff(t.spec.algorithm):
            continue
        spec = dataclasses.replace(t.spec, study_id=t.spec.index // per_study)
        t = dataclasses.replace(t, spec=spec)
        if "first_pass/train_time_s" in t.final_metrics:
            out.extend(refined_views(t))
        else:
            out.append(t)
    return out


def refined_views(trial: TrialResult) -> list[TrialResult]:
    """A refined algorithm's second pass seen twice: under its own name with the first
    pass's training time and steps added (the seed paper's protocol costs both passes), and
    as ``NAME 2nd pass`` with its own time only."""
    m = trial.final_metrics
    total = dataclasses.replace(
        trial,
        time_to_target_s=trial.time_to_target_s + m["first_pass/train_time_s"],
        steps_to_target=trial.steps_to_target + m["first_pass/steps"],
        train_time_s=trial.train_time_s + m["first_pass/train_time_s"],
    )
    second = dataclasses.replace(trial, spec=dataclasses.replace(trial.spec, algorithm=trial.spec.algorithm + SECOND_PASS))
    return [total, second]


@dataclasses.dataclass
class Scores:
    """Everything the report shows about one benchmark."""

    time_s: dict[str, dict[str, float]]
    steps: dict[str, dict[str, float]]
    score_time: dict[str, float]
    score_steps: dict[str, float]
    profiles_tau: list[float]
    profiles: dict[str, list[float]]
    variants: dict[str, Any]
    noise: dict[str, dict[str, float]]
    trials: list[TrialResult]


def score(store: Store, study_id: int, *, r_max: float = 4.0) -> Scores:
    """Time-to-target tables (seconds and steps), profiles, benchmark scores and the
    noise floor (the spread of per-study times) for a benchmark study."""
    trials = scored_trials(store, study_id)
    if not trials:
        raise SpecError(f"study {study_id} has no finished trials yet; run `steplab bench` first")
    t_time = scoring.time_table(trials, measure="time_s")
    t_steps = scoring.time_table(trials, measure="steps")
    base = sorted({w for row in t_time.values() for w in row if ":" not in w} or
                  {w for row in t_time.values() for w in row})
    taus = [1.0, 1.25, 1.5, 2.0, 3.0, 4.0]
    profiles = scoring.performance_profile(t_time, taus, workloads=base, missing="inf")
    return Scores(
        time_s=t_time,
        steps=t_steps,
        score_time=scoring.benchmark_score(t_time, r_max, workloads=base, missing="inf"),
        score_steps=scoring.benchmark_score(t_steps, r_max, workloads=base, missing="inf"),
        profiles_tau=taus,
        profiles={a: [float(v) for v in p] for a, p in profiles.items()},
        variants={k: dataclasses.asdict(v) for k, v in scoring.variant_agreement(t_steps).items()},
        noise=noise_floor(trials),
        trials=trials,
    )


def noise_floor(trials: Sequence[TrialResult]) -> dict[str, dict[str, float]]:
    """Per algorithm and workload, the relative spread (max/min - 1) of the per-study
    steps-to-target: a ratio between algorithms smaller than this is within the noise."""
    by: dict[tuple[str, str], dict[int, list[TrialResult]]] = {}
    for t in trials:
        wk = scoring.workload_key(t.spec)
        by.setdefault((t.spec.algorithm, wk), {}).setdefault(t.spec.study_id or 0, []).append(t)
    out: dict[str, dict[str, float]] = {}
    for (a, w), studies in by.items():
        times = [scoring.study_time(ts, measure="steps") for ts in studies.values()]
        finite = [x for x in times if x != float("inf")]
        spread = (max(finite) / min(finite) - 1.0) if len(finite) >= 2 else float("nan")
        out.setdefault(a, {})[w] = spread
    return out


def algorithm_list(text: str) -> tuple[str, ...]:
    """Algorithm names from a comma-separated list, ``refined(...)`` kept whole; each checked."""
    names, depth, cur = [], 0, ""
    for ch in text + ",":
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            if cur.strip():
                names.append(cur.strip())
            cur = ""
        else:
            cur += ch
    for n in names:
        _algorithm(n, ())
    return tuple(names)


def mapping_to_spec(d: Mapping[str, Any]) -> BenchSpec:
    """Inverse of ``BenchSpec.to_dict`` (for a study read back from the store)."""
    if not isinstance(d, Mapping):
        raise SpecError(f"a stored benchmark spec must be a table, got {type(d).__name__}")
    d = dict(d)
    fields = {f.name for f in dataclasses.fields(BenchSpec)}
    if not set(d) <= fields or "algorithms" not in d:
        raise SpecError(f"not a benchmark spec: keys {sorted(map(str, d))}; expected algorithms and some of "
                        f"{', '.join(sorted(fields))}")
    wl = d.get("workloads")
    entry_fields = {f.name for f in dataclasses.fields(SuiteEntry)}
    if wl is not None and (not isinstance(wl, (list, tuple)) or not all(
            isinstance(e, Mapping) and "workload" in e and set(e) <= entry_fields for e in wl)):
        raise SpecError(f"benchmark spec: 'workloads' must be a list of {{workload, variant, budget_steps, "
                        f"target}} tables, got {wl!r}")
    d["workloads"] = tuple(SuiteEntry(**e) for e in wl) if wl is not None else None
    for field in ("algorithms", "overrides"):
        if not isinstance(d.get(field, ()), (list, tuple)):
            raise SpecError(f"benchmark spec: {field!r} must be a list of strings, got {d[field]!r}")
    d["algorithms"] = tuple(d["algorithms"])
    d["overrides"] = tuple(d.get("overrides", ()))
    return BenchSpec(**d)
