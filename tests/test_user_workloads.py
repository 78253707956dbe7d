"""Workloads of your own, named by reference (issue 20): ``path/to/file.py:Class`` and
``package.module:Class``, the ``TorchWorkload`` adapter, one-line errors that leave the store
as it was, the source hash that stops a study from mixing two versions of a file, and the
worked example benchmarked serially, on the process pool and on Ray."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import shutil
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch.utils.data import TensorDataset
from typer.testing import CliRunner

from steplab import workloads
from steplab.cli import app
from steplab.errors import WorkloadError
from steplab.store import open_store
from steplab.workloads import Target, references

ROOT = Path(__file__).resolve().parent.parent
SPIRALS = ROOT / "examples" / "workloads" / "spirals.py"
QUADRATIC = ROOT / "examples" / "workloads" / "quadratic.py"
runner = CliRunner()


@pytest.fixture(autouse=True)
def fresh_imports() -> Iterator[None]:
    """Every test imports its workload files anew (tests rewrite them)."""
    references.forget()
    yield
    references.forget()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def counts(db: Path) -> tuple[int, int]:
    """(studies, trials) in the SQLite store ``db`` ((0, 0) when there is no file)."""
    if not db.exists():
        return 0, 0
    with sqlite3.connect(db) as conn:
        return (conn.execute("SELECT count(*) FROM studies").fetchone()[0],
                conn.execute("SELECT count(*) FROM trials").fetchone()[0])


# ------------------------------------------------------------------------------ parsing
def test_references_are_told_from_built_in_names_by_a_slash_or_a_dot(tmp_path: Path) -> None:
    assert not references.is_reference("logreg") and not references.is_reference("charlm:deeper")
    assert references.split("charlm:deeper") == ("charlm", "deeper")
    assert references.split("logreg") == ("logreg", None)
    ref = references.parse("examples/workloads/spirals.py:TwoSpirals:wide", base=ROOT)
    assert (ref.kind, ref.location, ref.class_name, ref.variant) == ("file", str(SPIRALS), "TwoSpirals", "wide")
    assert ref.name == f"{SPIRALS}:TwoSpirals" and str(ref) == f"{SPIRALS}:TwoSpirals:wide"
    assert references.split(str(ref)) == (ref.name, "wide")  # the stored form parses back to itself
    mod = references.parse("my_pkg.workloads:Wl")
    assert (mod.kind, mod.location, mod.class_name, mod.variant) == ("module", "my_pkg.workloads", "Wl", None)
    # relative paths start at the current directory unless a base is given; ':' may occur in folders
    assert references.parse("w.py:C", base=tmp_path).location == str(tmp_path / "w.py")
    assert references.parse(f"{tmp_path}/a:b/w.py:C").location == f"{tmp_path}/a:b/w.py"


@pytest.mark.parametrize(("text", "says"), [
    ("dir/wl.py", "names no class; write 'dir/wl.py:ClassName'"),
    ("pkg.mod", "names no class"),
    ("wl.py:", "names no class"),
    ("dir/wl:Cls", "is not a .py file"),
    ("pkg..mod:Cls", "is not a dotted module name"),
    ("wl.py:1Cls", "is not a class name"),
    ("wl.py:Cls:v:w", "too many ':'"),
    ("wl.py:Cls:", "empty variant"),
])
def test_a_malformed_reference_is_one_line(text: str, says: str) -> None:
    with pytest.raises(WorkloadError, match=re.escape(says)) as e:
        references.parse(text)
    assert "\n" not in str(e.value)


# ------------------------------------------------------------------------------ loading
def test_a_file_reference_loads_once_and_records_its_path_and_source_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    wl = workloads.get("examples/workloads/quadratic.py:Quadratic")
    assert wl.name == wl.key == f"{QUADRATIC}:Quadratic" and wl.variant == "base"
    assert wl.source_sha256 == sha256(QUADRATIC)
    d = wl.describe()
    assert d["reference"] == f"{QUADRATIC}:Quadratic" and d["source_sha256"] == sha256(QUADRATIC)
    assert d["budget_steps"] == 300 and d["target"] == {"metric": "validation/loss", "value": 0.02, "mode": "min"}
    again = workloads.get(wl.name, budget_steps=50)
    assert type(again) is type(wl) and again.budget_steps == 50  # imported once per process
    assert workloads.workload_class(wl.name) is type(wl)
    assert "reference" not in workloads.get("logreg").describe()  # built-ins unchanged
    with pytest.raises(WorkloadError, match="unknown variant 'wide' of workload .*quadratic.py:Quadratic; known: base"):
        workloads.get(f"{QUADRATIC}:Quadratic:wide")
    with pytest.raises(WorkloadError, match="give it once"):
        workloads.get(f"{SPIRALS}:TwoSpirals:base", "other")


def test_a_module_reference_loads_from_sys_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "h1_user_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    shutil.copy(QUADRATIC, pkg / "toy.py")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        wl = workloads.get("h1_user_pkg.toy:Quadratic", budget_steps=20)
        assert wl.name == "h1_user_pkg.toy:Quadratic" and wl.budget_steps == 20
        assert wl.source_sha256 == sha256(QUADRATIC)
        with pytest.raises(WorkloadError, match="module 'h1_user_pkg.nothing' not found on sys.path"):
            workloads.get("h1_user_pkg.nothing:Quadratic")
    finally:
        for name in [m for m in sys.modules if m.startswith("h1_user_pkg")]:
            del sys.modules[name]


# ------------------------------------------------------------------------------ the adapter
def test_the_adapter_streams_seeded_batches_the_same_from_tensors_and_from_items() -> None:
    cls = workloads.workload_class(f"{SPIRALS}:TwoSpirals")
    wl = cls()
    cpu = torch.device("cpu")
    first = [next(wl.batches(3, cpu)) for _ in range(2)]
    assert torch.equal(first[0][0], first[1][0])  # the seed alone fixes the order
    assert not torch.equal(next(wl.batches(4, cpu))[0], first[0][0])
    train, _ = wl.datasets()

    class Items(torch.utils.data.Dataset):  # a plain map-style dataset of the same points
        def __len__(self) -> int:
            return len(train)

        def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
            return train[i]

    from steplab.workloads.adapter import collated_batches

    fast, slow = wl.batches(3, cpu), collated_batches(Items(), wl.batch_size, 3, cpu)
    for _ in range(40):  # past the end of the first epoch (2000 // 64 = 31 batches)
        (x1, y1), (x2, y2) = next(fast), next(slow)
        assert torch.equal(x1, x2) and torch.equal(y1, y2)


def test_the_adapter_evaluates_the_whole_validation_set_in_chunks() -> None:
    cls = workloads.workload_class(f"{SPIRALS}:TwoSpirals")
    wl = cls()
    model = wl.init_model(0)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), wl.init_model(0).state_dict().values()))
    _, val = wl.datasets()
    x, y = val.tensors
    with torch.no_grad():
        logits = model(x)
    want_acc = (logits.argmax(-1) == y).double().mean().item()
    want_loss = torch.nn.functional.cross_entropy(logits.double(), y).item()
    wl.eval_batch_size = 300  # chunks of 300, 300, 300, 100: the means are weighted by size
    got = wl.evaluate(model, torch.device("cpu"))
    assert set(got) == {"validation/loss", "validation/accuracy"}
    assert got["validation/accuracy"] == pytest.approx(want_acc, abs=1e-12)
    assert got["validation/loss"] == pytest.approx(want_loss, rel=1e-5)


def test_the_adapter_refuses_a_target_it_does_not_report_and_an_unknown_metric() -> None:
    from steplab.workloads import from_torch

    data = TensorDataset(torch.zeros(8, 2), torch.zeros(8, dtype=torch.long))
    kw = {"model": lambda: torch.nn.Linear(2, 2), "train": data, "validation": data, "budget_steps": 10,
          "batch_size": 4}
    with pytest.raises(WorkloadError, match="default_target metric 'validation/acc' is not reported; it reports "
                                            "validation/loss, validation/accuracy"):
        from_torch(target=Target("validation/acc", 0.9, "max"), **kw)

    def r2(out: torch.Tensor, y: torch.Tensor) -> float:
        return 1.0

    cls = from_torch(target=Target("validation/r2", 0.9, "max"), metric=r2, **kw)
    assert cls().evaluate(torch.nn.Linear(2, 2), torch.device("cpu"))["validation/r2"] == 1.0
    with pytest.raises(WorkloadError, match="batch_size must be an integer >= 1"):
        from_torch(target=Target("validation/loss", 0.1, "min"), **{**kw, "batch_size": 0})


# ------------------------------------------------------------------------------ one-line errors
BROKEN = {
    "missing.py": None,  # no such file
    "raises.py": "import math\n\nx = 1\ny = x / 0\n",
    "incomplete.py": ("from steplab.workloads.base import Workload\n\n"
                      "class Half(Workload):\n    batch_size = 8\n"
                      "    def loss(self, model, batch):\n        return 0\n"),
    "plain.py": "class Plain:\n    def loss(self, model, batch):\n        return 0\n    batch_size = 8\n",
}


@pytest.mark.parametrize(("ref", "says"), [
    ("missing.py:W", r"workload file /.*/missing.py not found; fix the path"),
    ("raises.py:W", r"importing workload file .*raises.py raised ZeroDivisionError: division by zero at line 4; fix"),
    ("incomplete.py:Half", r"incomplete.py:Half does not implement batches, default_budget_steps, default_target, "
                           r"evaluate, init_model of the Workload contract"),
    ("plain.py:Plain", r"plain.py:Plain is not a steplab Workload \(it lacks init_model, batches, evaluate, "
                       r"default_target, default_budget_steps\): subclass"),
    ("incomplete.py:Whole", r"workload file .*incomplete.py has no class 'Whole'; its classes: Half"),
])
def test_a_broken_workload_is_one_line_and_leaves_the_store_as_it_was(
        ref: str, says: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, text in BROKEN.items():
        if text is not None:
            (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "s.db"
    with open_store(str(db)) as store:  # a store with something in it
        store.create_study("earlier", "benchmark", {})
    before = counts(db)
    for args in (["bench", "--workloads", f"logreg,{ref}", "--algorithms", "adamw-cosine", "--trials", "1"],
                 ["run", ref], ["tune", ref, "--budget", "20", "-s", "qmc"]):
        r = runner.invoke(app, [*args, "--db", str(db)])
        assert r.exit_code == 2, (args, r.output)
        lines = [line for line in r.output.splitlines() if line.strip()]
        assert len(lines) == 1 and re.search(says, lines[0]), (args, r.output)
        assert counts(db) == before


# ------------------------------------------------------------------------------ resuming
def test_resuming_after_the_file_changed_is_refused_and_writes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from steplab.studies import bench
    from steplab.training.executors import SerialExecutor

    wl_file = tmp_path / "toy.py"
    shutil.copy(QUADRATIC, wl_file)
    url = f"sqlite:///{tmp_path / 'r.db'}"
    spec = bench.BenchSpec(algorithms=("adamw-cosine",), trials=1, ruleset="self",
                           workloads=(bench.SuiteEntry(f"{wl_file}:Quadratic", budget_steps=16),))
    with open_store(url) as store:
        b = bench.open_benchmark(spec, store)
        (result,) = list(bench.run(b, SerialExecutor(), url))
        assert result.spec.workload == f"{wl_file}:Quadratic"
        assert result.spec.settings["workload_sha256"] == sha256(wl_file)
        assert len(bench.open_benchmark(spec, store).todo) == 0  # the same file resumes: nothing to run
    wl_file.write_text(wl_file.read_text() + "\n# a changed line\n")
    references.forget()  # a new process would read the file anew
    with open_store(url) as store:
        before = store.list_trials()
        with pytest.raises(WorkloadError, match=rf"{re.escape(str(wl_file))} changed since trial {result.id} of "
                                                rf"benchmark '{re.escape(spec.study_name())}' ran it \(sha256 "
                                                rf"{sha256(QUADRATIC)[:12]} then, {sha256(wl_file)[:12]} now\): "
                                                r"restore it to resume, or .* \(--name NEW_NAME\)"):
            bench.open_benchmark(spec, store)
        assert [(t.id, t.status) for t in store.list_trials()] == [(t.id, t.status) for t in before]
        renamed = dataclasses.replace(spec, name="toy-v2")
        assert len(bench.open_benchmark(renamed, store).todo) == 1  # a new study runs the new version


def test_a_worker_that_ran_another_version_stops_the_benchmark() -> None:
    from steplab.results import TrialResult, TrialSpec
    from steplab.studies.bench.runner import _check_source

    spec = TrialSpec("/w/toy.py:Toy", "base", "a", {}, {}, 0, 16, settings={"workload_sha256": "ab" * 32})
    result = TrialResult(spec, "budget", 16, 0.1, 0.0, id=7)
    _check_source(result, "ab" * 32)
    _check_source(result, None)  # a built-in: nothing to compare
    with pytest.raises(WorkloadError, match="trial 7 ran /w/toy.py:Toy from a source with sha256 abababababab, "
                                            "but this process loaded cdcdcdcdcdcd"):
        _check_source(result, "cd" * 32)


# ------------------------------------------------------------------------------ executors
def bench_args(db: Path, name: str, *more: str) -> list[str]:
    return ["bench", "--workloads", "examples/workloads/spirals.py:TwoSpirals", "--algorithms", "adamw-cosine",
            "--trials", "1", "--name", name, "--db", str(db), *more]


def finals(db: Path, name: str) -> list[tuple[int, str, str]]:
    """(index, workload, final metrics as JSON without the timing ones: ``time/...``)."""
    with sqlite3.connect(db) as conn:
        rows = sorted(conn.execute(
            "SELECT t.idx, t.workload, t.final_metrics FROM trials t JOIN studies s ON s.id = t.study_id "
            "WHERE s.name = ?", (name,)).fetchall())
    return [(i, w, json.dumps({k: v for k, v in json.loads(m).items() if not k.startswith("time/")}, sort_keys=True))
            for i, w, m in rows]


@pytest.fixture(scope="module")
def serial_bench(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[int, str, str]]]:
    """The worked example benchmarked in this process: the results the workers must match."""
    folder = tmp_path_factory.mktemp("bench")
    shutil.copytree(ROOT / "examples", folder / "examples")
    db = folder / "b.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        mp.setenv("STEPLAB_BUDGET_SCALE", "0.04")  # 16 steps a trial
        references.forget()
        r = runner.invoke(app, bench_args(db, "serial"))
    assert r.exit_code == 0, r.output
    got = finals(db, "serial")
    assert [(i, w) for i, w, _ in got] == [(0, f"{folder}/examples/workloads/spirals.py:TwoSpirals")]
    return folder, got


# one trial each: a worker process (or Ray worker) starting and importing torch is the cost
@pytest.mark.parametrize("how", [["--workers", "2"], pytest.param(["--ray", "--workers", "1"], marks=[pytest.mark.ray, pytest.mark.slow])])
def test_the_worked_example_benchmarks_the_same_on_workers(
        how: list[str], serial_bench: tuple[Path, list[tuple[int, str, str]]], monkeypatch: pytest.MonkeyPatch) -> None:
    if "--ray" in how:
        pytest.importorskip("ray", reason="needs the ray extra: pip install 'steplab[ray]'")
    folder, want = serial_bench
    monkeypatch.chdir(folder)
    monkeypatch.setenv("STEPLAB_BUDGET_SCALE", "0.04")
    name = "on-" + how[0].strip("-")
    r = runner.invoke(app, bench_args(folder / "b.db", name, *how))
    assert r.exit_code == 0, r.output
    assert finals(folder / "b.db", name) == want  # every worker imported the same file: the same trials


def test_the_docs_show_the_example_written_against_the_contract() -> None:
    page = (ROOT / "docs" / "tutorials" / "workload.md").read_text()
    block = next(b for b in re.findall(r"^```python\n(.*?)^```", page, flags=re.M | re.S) if "class Quadratic" in b)
    assert block in QUADRATIC.read_text()
