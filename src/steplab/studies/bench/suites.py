"""Benchmark suites: the workloads (and variants) a benchmark runs, with their budgets
(AlgoPerf, Dahl et al. 2023, arXiv 2306.07179, §4.1: a suite of workloads, each with a
target and a step budget)."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Mapping
from typing import Any

from steplab import workloads
from steplab.errors import SpecError


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
