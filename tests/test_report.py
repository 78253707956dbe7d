"""The terminal summary and the HTML report, on a tiny benchmark run for real."""

from __future__ import annotations

import base64
import dataclasses
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from steplab import algorithms, report
from steplab import store as st
from steplab.errors import SpecError
from steplab.results import TrialResult, TrialSpec
from steplab.studies import bench
from steplab.training import jobs
from steplab.training import loop as train

EVIL = "<script>alert(1)</script>"
EVIL_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, int]:
    """2 algorithms x 1 short logreg workload x 1 trial, in a temp SQLite file."""
    db = str(tmp_path_factory.mktemp("report") / "runs.db")
    spec = bench.BenchSpec(
        algorithms=("adamw-cosine", "sgd-nesterov-cosine"),
        trials=1,
        workloads=(bench.SuiteEntry("logreg", budget_steps=200),),
    )
    store = st.open_store(db)
    b = bench.open_benchmark(spec, store)
    for job in b.todo:
        jobs.execute(job, db)
    store.close()
    return db, b.study_id


def test_write_html_is_self_contained(tiny: tuple[str, int], tmp_path: Path) -> None:
    db, study_id = tiny
    with st.open_store(db) as store:
        path = report.write_html(store, study_id, tmp_path / "out" / "report.html")
        study = store.get_study(study_id)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    for name in ("adamw-cosine", "sgd-nesterov-cosine", "logreg", study["name"]):
        assert name in text
    assert "Performance profile" in text and "id='profile'" in text
    assert "How to read this" in text and "All trials (2)" in text
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(images) >= 2  # the profile and one workload figure
    assert all(base64.b64decode(b)[:8] == b"\x89PNG\r\n\x1a\n" for b in images)
    # nothing to fetch or run
    assert "<script" not in text.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert "url(" not in text


def test_latest_benchmark(tiny: tuple[str, int], tmp_path: Path) -> None:
    db, study_id = tiny
    with st.open_store(db) as store:
        assert report.latest_benchmark(store) == study_id
    with st.open_store(tmp_path / "empty.db") as store:
        assert report.latest_benchmark(store) is None
        first = store.create_study("b1", "benchmark", {})
        store.create_study("other", "tune", {})
        assert report.latest_benchmark(store) == first
        second = store.create_study("b2", "benchmark", {})
        assert report.latest_benchmark(store) == second


def test_html_escapes_every_string_from_the_data(tmp_path: Path) -> None:
    db = tmp_path / "evil.db"
    with st.open_store(db) as store:
        study_id = store.create_study(EVIL, "benchmark", {"note": EVIL})
        algo = dataclasses.replace(algorithms.get_algorithm("adamw-cosine"), name=EVIL)
        wl = bench.SuiteEntry("logreg", budget_steps=60).build()
        train.run_trial(wl, algo.resolved(), 0, store=store, study_id=study_id)
        # a hand-made trial: hostile hyperparameters, message and variant name
        spec = TrialSpec("logreg", "<i>v</i>", "<b>bold</b>", {}, {"note": "<u>hp</u>"},
                         seed=1, budget_steps=10, study_id=study_id)
        tid = store.start_trial(spec)
        store.finish_trial(tid, TrialResult(spec, "failed", 3, 0.1, 0.0,
                                            message="<img src=x onerror=alert(1)>"))
        text = report.write_html(store, study_id, tmp_path / "evil.html").read_text()
    assert EVIL not in text and EVIL_ESCAPED in text
    assert "<script" not in text.lower()
    for raw in ("<img src=x", "<b>bold</b>", "<u>hp</u>", "<i>v</i>"):
        assert raw not in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text and "&lt;b&gt;bold&lt;/b&gt;" in text


def test_write_html_without_finished_trials_is_a_spec_error(tmp_path: Path) -> None:
    with st.open_store(tmp_path / "none.db") as store:
        sid = store.create_study("nothing-yet", "benchmark", {})
        with pytest.raises(SpecError, match="no finished trials"):
            report.write_html(store, sid, tmp_path / "x.html")


def _hand_made_scores() -> bench.Scores:
    inf = math.inf
    return bench.Scores(
        time_s={"fast": {"w1": 2.0, "w2": inf}, "[bold]odd[/]": {"w1": 3.0, "w2": inf}},
        steps={"fast": {"w1": 100.0, "w2": inf}, "[bold]odd[/]": {"w1": 150.0, "w2": inf}},
        score_time={"fast": 0.5, "[bold]odd[/]": 0.25},
        score_steps={"fast": 0.5, "[bold]odd[/]": 0.25},
        profiles_tau=[1.0, 2.0, 4.0],
        profiles={"fast": [0.5, 0.5, 0.5], "[bold]odd[/]": [0.0, 0.5, 0.5]},
        variants={},
        trials=[],
    )


def test_print_summary_shows_misses_without_intervals() -> None:
    console = Console(record=True, width=160)
    report.print_summary(_hand_made_scores(), console, title="hand made")  # scores without resamples
    out = console.export_text()
    assert "hand made" in out and "miss" in out
    assert not re.search(r"\d \[[\d×]", out)  # no "0.500 [0.2, ...]": no resamples, no intervals
    assert "[bold]odd[/]" in out  # names are text, not rich markup
    assert "×1.50" in out and "100" in out and "2.00 s" in out


def test_print_summary_on_a_real_benchmark(tiny: tuple[str, int]) -> None:
    db, study_id = tiny
    with st.open_store(db) as store:
        scores = bench.score(store, study_id)
    console = Console(record=True, width=160)
    report.print_summary(scores, console)
    out = console.export_text()
    assert "adamw-cosine" in out and "sgd-nesterov-cosine" in out and "tau=4" in out


def test_formatters() -> None:
    assert report.format_time(math.inf) == "—"
    assert report.format_time(math.inf, missing="miss") == "miss"
    assert report.format_time(0.5) == "0.500 s"
    assert report.format_time(125) == "2m 05s"
    assert report.format_time(7260) == "2h 01m"
    assert report.format_steps(1234.0) == "1,234"
    assert report.format_noise(0.123, 2) == "12%"
    assert report.format_noise(math.nan, 1) == "n/a (1 study)"


def test_importing_the_report_loads_no_torch_and_no_training_stack():
    # `steplab report` starts from `import steplab.report`: the studies, workloads and torch it
    # may need are imported inside the functions that use them (GitHub issue 19)
    heavy = ("torch", "optuna", "ray", "sklearn", "scipy.stats", "steplab.training", "steplab.studies",
             "steplab.workloads")
    code = ("import sys, steplab.report; "
            f"print(sorted(m for m in {heavy!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
