"""Refinement variants: the isotonic (monotone) projection and iterated refinement."""

from __future__ import annotations

import numpy as np
import pytest

from steplab import schedules
from steplab.analysis import refine
from steplab.analysis.refine_variants import isotonic, monotone
from steplab.errors import SpecError


def test_isotonic_sheet_example_exactly():
    # formula sheet workloads-curricula-schedules.md §4.5 (sklearn, V-run)
    y = np.array([1, 0.8, 0.9, 0.95, 0.5, 0.6, 0.1, 0.0])
    want = [1.0, 2.65 / 3, 2.65 / 3, 2.65 / 3, 0.55, 0.55, 0.1, 0.0]
    np.testing.assert_allclose(isotonic(y), want, atol=1e-12)


def test_isotonic_is_non_increasing_idempotent_and_keeps_monotone_input():
    rng = np.random.default_rng(0)
    y = np.abs(np.sin(np.linspace(0, 3, 500)) + 0.1 * rng.standard_normal(500))
    p = isotonic(y, warmup=50)
    assert np.all(np.diff(p[50:]) <= 1e-15) and p.max() == 1.0 and p.min() >= 0
    np.testing.assert_allclose(isotonic(p, warmup=50), p, atol=1e-12)
    already = np.linspace(1.0, 0.0, 300)
    np.testing.assert_allclose(isotonic(already), already, atol=1e-12)
    ramped = np.concatenate([np.full(20, 1.0), np.linspace(1.0, 0.2, 80)])  # flat over the warm-up points
    np.testing.assert_allclose(isotonic(ramped, warmup=20), ramped, atol=1e-12)


def test_monotone_removes_a_late_peak_and_keeps_the_warmup():
    # norms that fall until 60% of the run then rise: the closed form peaks late
    x = np.linspace(0, 1, 3000)
    g = np.interp(x, [0, 0.6, 1], [4.0, 1.0, 1.5])
    r = refine.refinement(g, budget_steps=1000, warmup_steps=50)
    assert np.argmax(r.values()) > 400  # the late-peak failure
    m = monotone(r)
    v = m.values()
    assert m.method == "closed-form+monotone"
    np.testing.assert_allclose(v[:50], v[50] * np.minimum(1.0, (np.arange(50) + 1) / 50), rtol=1e-3, atol=1e-6)
    assert np.all(np.diff(v[50:]) <= 1e-6)
    assert v.max() == pytest.approx(1.0, abs=1e-6)


# ---------------------------------------------------------------------------------- iterate
D, N, T, B = 20, 2000, 1000, 8


def _problem(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noisy least squares with condition number ~25."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((N, D)) * np.linspace(0.3, 1.5, D)
    return A, A @ rng.standard_normal(D) + 0.5 * rng.standard_normal(N)


def _sgd(A: np.ndarray, y: np.ndarray, mult: np.ndarray, peak: float, seed: int) -> tuple[float, np.ndarray]:
    """Minibatch SGD from 0; returns the full-data loss and the per-step l2 gradient norms."""
    rng = np.random.default_rng(seed + 100)
    x, norms = np.zeros(D), np.empty(T)
    for k in range(T):
        i = rng.integers(0, N, B)
        g = A[i].T @ (A[i] @ x - y[i]) / B
        norms[k] = np.linalg.norm(g)
        x -= peak * mult[k] * g
    return 0.5 * float(np.mean((A @ x - y) ** 2)), norms


@pytest.mark.parametrize("seed", [0, 1])
def test_iterated_refinement_keeps_the_convex_result(seed):
    # The paper's guarantee (Defazio et al. 2023, Thm 8 / §3.1): on a convex problem the
    # refined schedule lowers the last-iterate bound computed with the run's norms; refining
    # the refined run again must lower it again, and at the tuned peak the final loss stays
    # within 1% of tuned linear decay (measured: within 0.2% over 4 seeds).
    A, y = _problem(seed)
    lin = np.asarray(schedules.values(schedules.build("linear", T), T))
    finals: dict[str, list[float]] = {"linear": [], "iterated": []}
    for peak in (0.02, 0.05, 0.1):
        f0, n0 = _sgd(A, y, lin, peak, seed)
        r1 = refine.refinement(n0, budget_steps=T)
        _, n1 = _sgd(A, y, r1.values(), peak, seed)
        r2 = refine.refinement(n1, budget_steps=T)
        f2, _ = _sgd(A, y, r2.values(), peak, seed)
        ours, theirs = refine.bound_comparison(r1, lin)
        assert ours < theirs
        ours2, theirs2 = refine.bound_comparison(r2, r1.values())
        assert ours2 < theirs2
        finals["linear"].append(f0)
        finals["iterated"].append(f2)
    assert min(finals["iterated"]) <= 1.01 * min(finals["linear"])


def test_bad_input():
    with pytest.raises(SpecError, match="non-negative"):
        isotonic(np.array([1.0, -0.5, 0.2]))
    with pytest.raises(SpecError, match="warmup"):
        isotonic(np.array([1.0, 0.5, 0.2]), warmup=5)


def test_cli_refine_monotone(tmp_path):
    import json

    from typer.testing import CliRunner

    from steplab.cli import app

    runner = CliRunner()
    db = str(tmp_path / "m.db")
    r = runner.invoke(app, ["run", "logreg", "-a", "adamw-linear", "--steps", "120", "--no-stop-at-target", "--db", db])
    assert r.exit_code == 0, r.output
    out = tmp_path / "mono.json"
    r = runner.invoke(app, ["refine", "1", "--db", db, "--monotone", "--warmup", "6", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "closed-form+monotone" in r.output
    spec = schedules.spec_from(json.loads(out.read_text()))
    v = np.asarray(schedules.values(schedules.build(spec, 120), 120))
    assert np.all(np.diff(v[6:]) <= 1e-6) and v.max() == pytest.approx(1.0, abs=1e-5)
