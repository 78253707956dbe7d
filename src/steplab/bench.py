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
  gradient norms (Defazio et al. 2023, ``steplab.refine``) and runs ALGO again with it; the
  algorithm is scored twice, ``refined(ALGO)`` counting both passes and
  ``refined(ALGO) 2nd pass`` counting the second only.
* **Tradeoff curves** (``tradeoff = "cyclic"``, Portes et al. 2022, ``steplab.tradeoff``): per
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
import hashlib
import json
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from steplab import algorithms as algos
from steplab import scoring, space, tradeoff, workloads
from steplab.errors import SpecError
from steplab.jobs import FIRST_PASS, Job
from steplab.results import TrialResult
from steplab.store import Store

RULESETS = ("external", "self")
#: suffix of the view of a refined algorithm that counts its second pass only
SECOND_PASS = " 2nd pass"
#: options of ``refined(ALGO, ...)`` and their defaults (``steplab.refine.refine_trial``'s)
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
    if name not in SUITES:
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
    #: also measure accuracy-vs-time curves: "cyclic" (steplab.tradeoff) or None
    tradeoff: str | None = None

    def __post_init__(self) -> None:
        if self.ruleset not in RULESETS:
            raise SpecError(f"unknown ruleset {self.ruleset!r}; use one of {', '.join(RULESETS)}")
        for field, v in (("trials", self.trials), ("studies", self.studies)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise SpecError(f"benchmark spec: {field!r} must be a positive integer, got {v!r}")
        if not self.algorithms:
            raise SpecError("benchmark spec: 'algorithms' is empty; name at least one (steplab algorithms list)")
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
        d = self.to_dict()
        d.pop("name")
        digest = hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:8]
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
        data = tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise SpecError(f"benchmark spec {str(p)!r} not found") from None
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"benchmark spec {str(p)!r} is not valid TOML: {e}") from None
    unknown = set(data) - _SPEC_KEYS
    if unknown:
        raise SpecError(f"benchmark spec {str(p)!r}: unknown key(s) {', '.join(sorted(unknown))}; "
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
        kw["workloads"] = parse_workload_list(",".join(w) if isinstance(w, list) else str(w))
    if "set" in data:
        kw["overrides"] = tuple(f"{k}={json.dumps(v)}" for k, v in dict(data["set"]).items())
    try:
        return BenchSpec(**kw)
    except TypeError as e:
        raise SpecError(f"benchmark spec {str(p)!r}: {e}") from None


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
    """The tradeoff trials of ``spec`` (``steplab.tradeoff.jobs``): per plain algorithm and
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
    """Find or create the study of ``spec``; discard trials a killed run left ``running``."""
    name = spec.study_name()
    found = store.find_study(name)
    if found is not None:
        if found["spec"] != spec.to_dict():
            raise SpecError(f"a different benchmark named {name!r} is already in the store; pick another name")
        study_id = int(found["id"])
        store.discard_unfinished(study_id)
    else:
        study_id = store.create_study(name, "benchmark", spec.to_dict())
    jobs = plan(spec, study_id)
    done = store.finished_by_key(study_id)
    return Benchmark(spec, study_id, jobs, done)


def run(bench: Benchmark, executor: Any, db_url: str) -> Iterator[TrialResult]:
    """Run the benchmark's remaining jobs on ``executor``, yielding each result as it
    finishes (already stored by the worker)."""
    todo = bench.todo
    if not todo:
        return
    # a refined job's stored spec holds the refined schedule, so match results to jobs by
    # what identifies a trial within the study rather than by spec key
    keys = {(j.algorithm["name"], j.workload, j.variant, j.seed, j.index): j.key() for j in todo}
    for result in executor.run(todo, db_url):
        s = result.spec
        bench.done[keys.get((s.algorithm, s.workload, s.variant, s.seed, s.index), s.key())] = result
        yield result


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
    d = dict(d)
    wl = d.get("workloads")
    d["workloads"] = tuple(SuiteEntry(**e) for e in wl) if wl is not None else None
    d["algorithms"] = tuple(d["algorithms"])
    d["overrides"] = tuple(d.get("overrides", ()))
    return BenchSpec(**d)
