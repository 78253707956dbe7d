"""Schedules against hand-computed values, torch's own schedulers, and properties."""

from __future__ import annotations

import json
import math
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from steplab import schedules as S
from steplab.errors import SpecError


def vals(spec, total, ks):
    f = S.build(spec, total)
    return [f(k) for k in ks]


# ------------------------------------------------------------------ hand-computed values
@pytest.mark.parametrize(
    "spec,total,ks,expected",
    [
        ("constant", 10, [0, 5, 9, 10], [1, 1, 1, 1]),
        # 1 + (0.2 - 1) * k/10
        ("linear:end=0.2", 10, [0, 5, 9, 10], [1.0, 0.6, 0.28, 0.2]),
        # end + (1-end)(1+cos(pi k/T))/2 ; k=5 -> 0.1 + 0.9*0.5 = 0.55 ; k=9 -> 0.1+0.9*(1+cos(0.9pi))/2
        ("cosine:end=0.1", 10, [0, 5, 9, 10], [1.0, 0.55, 0.1 + 0.9 * (1 + math.cos(0.9 * math.pi)) / 2, 0.1]),
        # (1 - k/T)^2
        ("polynomial:power=2", 10, [0, 5, 9, 10], [1.0, 0.25, 0.01, 0.0]),
        # milestones at 5 and 8: gamma^count
        ("step:milestones=[0.5,0.8],gamma=0.5", 10, [0, 4, 5, 7, 8, 10], [1, 1, 0.5, 0.5, 0.25, 0.25]),
        ("exponential:gamma=0.5", 10, [0, 1, 3], [1.0, 0.5, 0.125]),
        # end=0.01 over T=2: gamma = 0.1 -> k=1 is 0.1
        ("exponential:end=0.01", 2, [0, 1, 2], [1.0, 0.1, 0.01]),
        # REX: (1-z)/(1-z/2); z=1/2 -> 2/3, z=0.9 -> 0.1/0.55
        ("rex", 10, [0, 5, 9, 10], [1.0, 2 / 3, 0.1 / 0.55, 0.0]),
        ("rex:alpha=0", 10, [5], [0.5]),
        # WSD T=10, decay 0.2 -> 2 decay steps starting at 8; 1-sqrt: x=(k-8)/2
        ("wsd", 10, [0, 7, 8, 9, 10], [1, 1, 1, 1 - math.sqrt(0.5), 0.0]),
        ("wsd:shape=linear,decay=0.4", 10, [5, 6, 7, 8, 9, 10], [1, 1.0, 0.75, 0.5, 0.25, 0.0]),
        ("wsd:shape=cosine,decay=0.4,end=0.1", 10, [6, 8, 10], [1.0, 0.55, 0.1]),
        ("cooldown:cooldown=0.5", 10, [4, 5, 6, 10], [1.0, 1.0, 0.8, 0.0]),
        # warmup 0.2 of T=10 -> W=2: (k+1)/W then cosine over 8 steps
        ("cosine:warmup=0.2", 10, [0, 1, 2, 6, 10], [0.5, 1.0, 1.0, 0.5, 0.0]),
        ("linear:warmup=0.2,warmup_start=0.1", 10, [0, 1, 2, 6], [0.55, 1.0, 1.0, 0.5]),
        # WSD with warmup: decay is 20% of the *whole* run -> 2 steps of 10
        ("wsd:warmup=0.2,shape=linear", 10, [0, 1, 7, 8, 9, 10], [0.5, 1.0, 1.0, 1.0, 0.5, 0.0]),
        # inverse sqrt, W=2 timescale=2: 1/sqrt(1+(k-2)/2)
        ("inverse_sqrt:warmup=0.2", 10, [0, 1, 2, 4, 8], [0.5, 1.0, 1.0, 1 / math.sqrt(2), 0.5]),
        ("inverse_sqrt:timescale=0.1", 10, [0, 1, 3], [1.0, 1 / math.sqrt(2), 0.5]),
        # power: knee 0.1*100 = 10 steps, b=-0.5 -> (k/10)^-0.5 once past the knee
        ("power:knee=0.1,exponent=-0.5", 100, [0, 5, 10, 40, 90], [1.0, 1.0, 1.0, 0.5, 1 / 3]),
        # infinite: T=100 cooldown_end .2 anneal_start .6, const .25 final .01, linear cooldown
        (
            "infinite:cooldown_end=0.2,anneal_start=0.6,cooldown_shape=linear",
            100,
            [0, 10, 20, 50, 60, 80, 100],
            [1.0, 0.625, 0.25, 0.25, 0.25, 0.25 * (0.04**0.5), 0.01],
        ),
        ("piecewise:points=[[0,0],[0.5,1],[1,0.2]]", 10, [0, 2, 5, 8, 10, 12], [0.0, 0.4, 1.0, 0.52, 0.2, 0.2]),
        # triangular: 4 cycles over 100 -> size 25, up=12 (round(12.5) banker's -> 12), low=0.1
        ("triangular:cycles=4,low=0.1", 100, [0, 6, 12, 25], [0.1, 0.55, 1.0, 0.1]),
    ],
)
def test_hand_computed(spec, total, ks, expected):
    assert vals(spec, total, ks) == pytest.approx(expected, abs=1e-12)


def test_onecycle_hand_values():
    # T=10, pct 0.3 -> peak at step 2 (0.3*10-1); start 1/25; end 1/25/1e4 at step 9
    f = S.build("onecycle", 10)
    assert f(0) == pytest.approx(0.04)
    assert f(2) == pytest.approx(1.0)
    assert f(9) == pytest.approx(0.04 / 1e4)
    # halfway through phase 2 (step 5.5 not integral): check step 2 + 3.5 via cos at pct=3/7
    assert f(5) == pytest.approx(0.04e-4 + (1 - 0.04e-4) / 2 * (math.cos(math.pi * 3 / 7) + 1))


# ------------------------------------------------------------------ equal to torch
T = 300


def _torch_sequence(make, total=T):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0, momentum=0.9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sched = make(opt)
        out = []
        for _ in range(total):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
    return out


lr_sched = torch.optim.lr_scheduler


@pytest.mark.parametrize(
    "spec,make",
    [
        ("step:every=0.1,gamma=0.5", lambda o: lr_sched.StepLR(o, 30, 0.5)),
        ("step:milestones=[0.3,0.7],gamma=0.2", lambda o: lr_sched.MultiStepLR(o, [90, 210], 0.2)),
        ("exponential:gamma=0.99", lambda o: lr_sched.ExponentialLR(o, 0.99)),
        ("linear:end=0.05", lambda o: lr_sched.LinearLR(o, 1.0, 0.05, total_iters=T)),
        ("cosine:end=0.1", lambda o: lr_sched.CosineAnnealingLR(o, T_max=T, eta_min=0.1)),
        ("cosine", lambda o: lr_sched.CosineAnnealingLR(o, T_max=T)),
        ("polynomial:power=1.5", lambda o: lr_sched.PolynomialLR(o, total_iters=T, power=1.5)),
        ("triangular:cycles=3,low=0.2", lambda o: lr_sched.CyclicLR(o, 0.2, 1.0, step_size_up=50, step_size_down=50, cycle_momentum=False)),
        ("triangular2:cycles=5,low=0.1,up=0.25", lambda o: lr_sched.CyclicLR(o, 0.1, 1.0, step_size_up=15, step_size_down=45, mode="triangular2", cycle_momentum=False)),
        ("exp_range:cycles=6,low=0.1,gamma=0.995", lambda o: lr_sched.CyclicLR(o, 0.1, 1.0, step_size_up=25, step_size_down=25, mode="exp_range", gamma=0.995, cycle_momentum=False)),
        ("onecycle", lambda o: lr_sched.OneCycleLR(o, max_lr=1.0, total_steps=T, cycle_momentum=False)),
        ("onecycle:pct_start=0.25,anneal=linear,div_factor=10,final_div_factor=100", lambda o: lr_sched.OneCycleLR(o, max_lr=1.0, total_steps=T, pct_start=0.25, anneal_strategy="linear", div_factor=10, final_div_factor=100, cycle_momentum=False)),
        ("onecycle:three_phase=true", lambda o: lr_sched.OneCycleLR(o, max_lr=1.0, total_steps=T, three_phase=True, cycle_momentum=False)),
    ],
)
def test_equals_torch_over_a_run(spec, make):
    ours = S.values(S.build(spec, T), T)
    theirs = _torch_sequence(make)
    assert max(abs(a - b) for a, b in zip(ours, theirs)) < 1e-6


def test_lr_scheduler_adapter_respects_group_peaks():
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{"params": [a], "lr": 0.1}, {"params": [b], "lr": 0.02}])
    sched = S.to_lr_scheduler(opt, S.build("cosine", 10))
    f = S.build("cosine", 10)
    for k in range(10):
        assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * f(k))
        assert opt.param_groups[1]["lr"] == pytest.approx(0.02 * f(k))
        opt.step()
        sched.step()


def test_join_counts_local_steps():
    f = S.join([S.constant_schedule(value=1.0), S.linear_schedule(budget_steps=4)], [3])
    assert [f(k) for k in range(8)] == pytest.approx([1, 1, 1, 1, 0.75, 0.5, 0.25, 0.0])
    with pytest.raises(SpecError):
        S.join([S.constant_schedule()], [3])


# ------------------------------------------------------------------ properties
_FRACTION = st.floats(0.0, 0.5, allow_nan=False)
_SPECS = st.one_of(
    st.builds(lambda e, w: {"name": "cosine", "end": e, "warmup": w}, st.floats(0, 1), _FRACTION),
    st.builds(lambda e, w: {"name": "linear", "end": e, "warmup": w}, st.floats(0, 1), _FRACTION),
    st.builds(lambda d, s, w: {"name": "wsd", "decay": d, "shape": s, "warmup": w}, st.floats(0, 1), st.sampled_from(["linear", "cosine", "1-sqrt", "square"]), _FRACTION),
    st.builds(lambda a, w: {"name": "rex", "alpha": a, "warmup": w}, st.floats(0, 0.999), _FRACTION),
    st.builds(lambda p: {"name": "polynomial", "power": p}, st.floats(0.1, 5)),
    st.builds(lambda c, lo, up: {"name": "triangular2", "cycles": c, "low": lo, "up": up}, st.floats(0.5, 10), st.floats(0, 1), st.floats(0.05, 0.95)),
    st.builds(lambda p: {"name": "onecycle", "pct_start": p}, st.floats(0.05, 0.9)),
    st.builds(lambda w, t: {"name": "inverse_sqrt", "warmup": w, "timescale": t}, _FRACTION, st.floats(1e-3, 1)),
    st.builds(lambda k, b, d: {"name": "power", "knee": k, "exponent": b, "decay": d}, st.floats(1e-3, 1), st.floats(-2, 0), st.floats(0, 0.5)),
    st.builds(lambda c, a: {"name": "infinite", "cooldown_end": min(c, a), "anneal_start": max(c, a)}, st.floats(0, 1), st.floats(0, 1)),
    st.builds(lambda g: {"name": "step", "gamma": g}, st.floats(0.01, 1)),
)


@settings(max_examples=150, deadline=None)
@given(spec=_SPECS, total=st.integers(1, 400))
def test_multipliers_finite_nonnegative(spec, total):
    f = S.build(spec, total)
    for k in range(total + 1):
        v = f(k)
        assert math.isfinite(v) and v >= 0.0


@settings(max_examples=100, deadline=None)
@given(spec=_SPECS)
def test_spec_json_round_trip(spec):
    parsed = S.spec_from(spec)
    again = S.spec_from(json.loads(json.dumps(parsed.to_dict())))
    assert again == parsed
    assert S.spec_from(str(parsed)) == parsed
    assert S.values(S.build(again, 50), 51) == S.values(S.build(spec, 50), 51)


@settings(max_examples=100, deadline=None)
@given(spec=_SPECS, total=st.integers(2, 300), start=st.floats(0, 1))
def test_warmup_is_monotone(spec, total, start):
    inner = S.build({k: v for k, v in spec.items() if k != "warmup"}, total)
    peak = inner(0)
    w = max(1, total // 4)
    f = S.warmup(inner, w, start=min(start, peak))
    ramp = [f(k) for k in range(w)]
    assert all(b >= a for a, b in zip(ramp, ramp[1:]))
    assert ramp[-1] == pytest.approx(peak)
    assert f(w) == pytest.approx(inner(0))


@pytest.mark.parametrize(
    "spec,param",
    [
        ({"name": "cosine", "end": 1.5}, "end"),
        ({"name": "cosine", "end": "low"}, "end"),
        ({"name": "cosine", "warmup": -0.1}, "warmup"),
        ({"name": "wsd", "shape": "zigzag"}, "shape"),
        ({"name": "wsd", "decay": float("nan")}, "decay"),
        ({"name": "rex", "alpha": 1.0}, "alpha"),
        ({"name": "triangular", "cycles": 0}, "cycles"),
        ({"name": "polynomial", "power": -1}, "power"),
        ({"name": "cosine", "ends": 0.1}, "ends"),
        ({"name": "piecewise", "points": [[0, 1], [0, 0]]}, "points"),
        ({"name": "piecewise", "points": [[0, 1], [2, 0]]}, "points"),
        ({"name": "step", "milestones": [1.5]}, "milestones"),
        ({"name": "step", "every": 0.1, "milestones": [0.5]}, "milestones"),
        ({"name": "infinite", "cooldown_end": 0.9, "anneal_start": 0.5}, "cooldown_end"),
        ({"name": "onecycle", "three_phase": "yes"}, "three_phase"),
    ],
)
def test_invalid_specs_name_the_parameter(spec, param):
    with pytest.raises(SpecError) as info:
        S.spec_from(spec)
    msg = str(info.value)
    assert param in msg and "\n" not in msg


@pytest.mark.parametrize("bad", ["nope", "", "cosine:end", "{not json", {"end": 0.1}, 3])
def test_malformed_specs(bad):
    with pytest.raises(SpecError):
        S.spec_from(bad)


def test_string_form_and_aliases():
    assert S.spec_from("wsd:decay=0.1,shape=cosine").to_dict() == {"name": "wsd", "decay": 0.1, "shape": "cosine"}
    assert S.spec_from("inverse-sqrt").name == "inverse_sqrt"
    assert S.spec_from('{"name": "linear", "end": 0.5}') == S.spec_from("linear:end=0.5")


def test_every_registered_schedule_builds_with_defaults():
    for name in S.names():
        spec = {"name": name}
        if name == "piecewise":
            spec["points"] = [[0, 1], [1, 0]]
        f = S.build(spec, 100)
        assert all(0 <= f(k) <= 1.0 + 1e-12 for k in range(101))
        assert S.info(name).summary


def test_build_takes_budget_steps_by_name_and_a_user_schedule_registers(monkeypatch):
    from steplab.schedules import registry

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))  # register() stays local to this test
    assert S.build("cosine", budget_steps=10)(0) == 1.0
    with pytest.raises(TypeError):
        S.build("cosine", total_steps=10)  # type: ignore[call-arg]

    def make_half(*, budget_steps: int, warmup_steps: int, params: dict) -> S.Schedule:
        return S.linear_schedule(budget_steps=budget_steps - warmup_steps, end=params["end"])

    S.register(S.ScheduleInfo("half_test", "linear to `end`", {"end": S.Param(float, 0.5, "end")}, make_half))
    f = S.build({"name": "half_test", "warmup": 0.2}, budget_steps=10)
    assert [round(f(k), 4) for k in (0, 1, 2, 10)] == [0.5, 1.0, 1.0, 0.5]


def test_stage_schedules_are_registered_without_importing_the_registry_back():
    import ast
    import inspect

    from steplab.schedules import stages

    tree = ast.parse(inspect.getsource(stages))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not any(m and (m.endswith("registry") or m.endswith("spec") or m == "steplab.schedules") for m in imported)
    assert {"stages_rewarm", "stages_constant", "stages_infinite", "stages_wsd"} <= set(S.names())


def test_docstring_examples():
    import doctest

    from steplab.schedules import shapes, stages

    for module in (shapes, stages):
        assert doctest.testmod(module).failed == 0
