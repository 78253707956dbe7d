"""The benchmark spec: what a benchmark runs, from TOML, Python or a stored study
(AlgoPerf's rulesets, Dahl et al. 2023, arXiv 2306.07179, §4.2)."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from steplab import algorithms as algos
from steplab.errors import SpecError, read_text_file
from steplab.results import spec_digest
from steplab.studies import tradeoff
from steplab.studies.bench.names import algorithm_for, parse_refined, refined_name
from steplab.studies.bench.suites import SuiteEntry, get_suite, parse_workload_list

RULESETS = ("external", "self")


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
    #: add studies until the top algorithm is separated at this level (or ``max_studies``);
    #: ``None``: run ``studies`` and stop (``steplab.studies.bench.adaptive``)
    until_confident: float | None = None
    #: the cap on studies per cell when ``until_confident`` is set
    max_studies: int | None = None

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
        self._check_adaptive()

    def _check_adaptive(self) -> None:
        level, cap = self.until_confident, self.max_studies
        if level is None and cap is None:
            return
        if level is None:
            raise SpecError("benchmark spec: 'max_studies' needs 'until_confident' (e.g. until_confident = 0.9)")
        if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0.5 <= level < 1:
            raise SpecError(f"benchmark spec: 'until_confident' must be a level in [0.5, 1) such as 0.9, got {level!r}")
        if cap is None:
            raise SpecError("benchmark spec: 'until_confident' needs 'max_studies', the cap on studies per "
                            f"algorithm and workload (above 'studies', {self.studies}): add e.g. --max-studies "
                            f"{self.studies + 2}")
        if isinstance(cap, bool) or not isinstance(cap, int) or not self.studies < cap <= 1000:
            raise SpecError(f"benchmark spec: 'max_studies' must be an integer above 'studies' ({self.studies}) "
                            f"and at most 1000, got {cap!r}")
        object.__setattr__(self, "until_confident", float(level))

    def entries(self) -> tuple[SuiteEntry, ...]:
        return self.workloads if self.workloads is not None else get_suite(self.suite).entries

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["algorithms"] = list(self.algorithms)
        d["overrides"] = list(self.overrides)
        d["workloads"] = [dataclasses.asdict(e) for e in self.workloads] if self.workloads is not None else None
        for key in ("tradeoff", "until_confident", "max_studies"):
            if d[key] is None:  # keeps the names and stored specs of older benchmarks
                del d[key]
        return d

    def study_name(self) -> str:
        if self.name:
            return self.name
        digest = spec_digest(self.to_dict())
        return f"{self.suite}-{self.ruleset}-{digest}"


_SPEC_KEYS = {"suite", "algorithms", "ruleset", "trials", "studies", "seed", "workloads", "set", "name", "tradeoff",
              "until_confident", "max_studies"}


def load_spec(path: str | Path) -> BenchSpec:
    """A ``BenchSpec`` from a TOML file (see ``examples/bench-quick.toml``)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    p = Path(path)
    text = read_text_file(p, "benchmark spec", "give a TOML file")
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
                          if k in {"suite", "ruleset", "trials", "studies", "seed", "name", "tradeoff",
                                   "until_confident", "max_studies"}}
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
            kw["overrides"] = tuple(f"{k}={algos.toml_value(v) if isinstance(v, (dict, list)) else json.dumps(v)}"
                                    for k, v in data["set"].items())
        except (SpecError, TypeError):
            raise SpecError(f"benchmark spec {str(p)!r}: a [set] value is a date or time; give a number, "
                            "string, array or table") from None
    try:
        spec = BenchSpec(**kw)
        for name in spec.algorithms:  # unknown algorithms and bad overrides fail now, not when it runs
            algorithm_for(name, spec.overrides)
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
