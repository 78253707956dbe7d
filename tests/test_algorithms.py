"""Tests for steplab.algorithms: built-ins, hyperparameters, TOML/JSON, --set overrides."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from steplab import algorithms as A
from steplab.algorithms.space import LogUniform, Uniform, sample
from steplab.errors import SpecError
from steplab.optim import optimizers as O
from steplab.optim.modes import eval_mode
from steplab.schedules import spec_from

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "algorithms"


def tiny(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Tanh(), nn.Linear(8, 1))


def train(model: nn.Module, opt: torch.optim.Optimizer, sched: object, steps: int, seed: int = 1) -> None:
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x, y = torch.randn(16, 4, generator=g), torch.randn(16, 1, generator=g)
        opt.zero_grad()
        ((model(x) - y) ** 2).mean().backward()
        opt.step()
        sched.step()  # type: ignore[attr-defined]


def flat(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


EXPECTED = {"adamw-cosine", "adamw-linear", "adamw-wsd", "nadamw-cosine", "sgd-nesterov-cosine", "sgd-step",
            "lion-cosine", "schedulefree-adamw", "schedulefree-sgd", "prodigy", "dog", "adamw-rex",
            "adamw-onecycle"}


def test_builtin_names() -> None:
    assert EXPECTED <= set(A.algorithm_names())
    assert all(A.get_algorithm(n).description for n in A.algorithm_names())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_builtin_builds_and_trains(name: str) -> None:
    algo = A.get_algorithm(name)
    model = tiny()
    before = flat(model).clone()
    opt, sched = algo.resolved().build(model, budget_steps=20)
    lr0 = opt.param_groups[0]["lr"]
    assert 0 <= lr0 <= algo.lr * (1 + 1e-9)
    train(model, opt, sched, 8)
    with eval_mode(opt):
        assert torch.isfinite(flat(model)).all() and not torch.equal(flat(model), before)
    # defaults, search space and the algorithm's own settings agree
    assert set(algo.defaults()) >= {"lr", "weight_decay", "warmup", "label_smoothing"}
    assert set(algo.search_space) <= set(algo.defaults())
    assert "lr" in algo.search_space


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_defaults_reproduce_the_algorithm(name: str) -> None:
    algo = A.get_algorithm(name)
    base, again = algo.resolved(), algo.with_hyperparameters(algo.defaults())
    eff = lambda r: {**O.default_kwargs(r.optimizer), **r.optimizer_kwargs}  # noqa: E731
    a, b = eff(base), eff(again)
    assert a.keys() == b.keys()
    for k in a:
        assert a[k] == pytest.approx(b[k], rel=1e-12) if isinstance(a[k], (int, float, list, tuple)) else a[k] == b[k]
    assert (base.lr, base.weight_decay) == (again.lr, again.weight_decay)
    assert spec_from(base.schedule).resolved() == spec_from(again.schedule).resolved()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_search_space_points_build(name: str) -> None:
    algo = A.get_algorithm(name)
    for hp in sample(algo.search_space, 3, seed=0):
        r = algo.with_hyperparameters(hp)
        assert r.hyperparameters == hp and r.lr == pytest.approx(hp.get("lr", algo.lr))
        r.build(tiny(), budget_steps=10)


def test_hyperparameters_map_onto_settings() -> None:
    algo = A.get_algorithm("adamw-wsd")
    r = algo.with_hyperparameters({"learning_rate": 1e-3, "one_minus_beta2": 0.05, "beta1": 0.8, "warmup": 0.1,
                                   "schedule.decay": 0.3, "optimizer.amsgrad": True, "label_smoothing": 0.1,
                                   "grad_clip": 1.0, "batch_size": 64})
    assert r.lr == 1e-3 and r.optimizer_kwargs["betas"] == pytest.approx([0.8, 0.95])
    assert r.optimizer_kwargs["amsgrad"] is True
    assert r.schedule["warmup"] == 0.1 and r.schedule["decay"] == 0.3
    assert (r.label_smoothing, r.grad_clip, r.batch_size) == (0.1, 1.0, 64)
    sgd = A.get_algorithm("sgd-nesterov-cosine").with_hyperparameters({"one_minus_beta1": 0.2})
    assert sgd.optimizer_kwargs["momentum"] == pytest.approx(0.8) and sgd.optimizer_kwargs["nesterov"]
    json.dumps(r.to_dict())
    assert A.ResolvedAlgorithm.from_dict(r.to_dict()) == r


@pytest.mark.parametrize(
    ("hp", "match"),
    [
        ({"dropout_rate": 0.1}, "unknown hyperparameter 'dropout_rate'"),
        ({"schedule.nope": 1}, "no parameter 'nope'"),
        ({"optimizer.nope": 1}, "no parameter 'nope'"),
        ({"lr": 0.0}, "lr must be > 0"),
        ({"label_smoothing": 1.0}, "label_smoothing"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_bad_hyperparameters(hp: dict, match: str) -> None:
    with pytest.raises(SpecError, match=match):
        A.get_algorithm("adamw-cosine").with_hyperparameters(hp)


# ----------------------------------------------------------------------------------
# serialization
# ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_toml_and_json_round_trip(name: str, tmp_path: Path) -> None:
    algo = A.get_algorithm(name)
    path = tmp_path / f"{name}.toml"
    path.write_text(algo.to_toml())
    assert A.load_toml(path) == algo
    assert A.get_algorithm(str(path)) == algo
    assert A.Algorithm.from_dict(json.loads(algo.to_json())) == algo


def test_example_files() -> None:
    assert A.get_algorithm(str(EXAMPLES / "adamw-cosine.toml")) == A.get_algorithm("adamw-cosine")
    mine = A.load_toml(EXAMPLES / "my-sgd.toml")
    assert mine.name == "my-sgd" and mine.optimizer_kwargs["nesterov"] is True
    assert mine.search_space["schedule.decay"] == Uniform(0.1, 0.5)
    assert A.from_toml(mine.to_toml()) == mine
    opt, _ = mine.with_hyperparameters(sample(mine.search_space, 1, 0)[0]).build(tiny(), 10)
    assert opt.param_groups[0]["nesterov"]


def test_toml_unknown_optimizer_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('name = "bad"\noptimizer = "adamz"\nlr = 1e-3\n')
    with pytest.raises(SpecError, match="unknown optimizer 'adamz'") as e:
        A.get_algorithm(str(path))
    assert "\n" not in str(e.value) and "bad.toml" in str(e.value)


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ('[search_space]\nlr = { log_uniform = [0.1, 0.001] }\n', "'lr'.*low < high"),
        ('[search_space]\nlr = { log_uniform = [0.0, 0.1] }\n', "'lr'.*low > 0"),
        ('[search_space]\nwd = { uniform = [0.0, 0.1] }\n', "'wd'.*unknown hyperparameter"),
        ('[search_space]\n"schedule.warmup" = { uniform = [0.0, 2.0] }\n', "'schedule.warmup' = 2.0"),
        ('[search_space]\nbeta2 = { choice = [0.99] }\n', "'beta2'.*no second beta"),
        ('[schedule]\nname = "cosine"\nwarmup = 2.0\n', "warmup"),
        ('colour = "red"\n', "unknown key 'colour'"),
        ('lr = \n', "not valid TOML"),
    ],
)
def test_toml_invalid_specs(body: str, match: str, tmp_path: Path) -> None:
    path = tmp_path / "algo.toml"
    path.write_text('name = "x"\noptimizer = "sgd"\nlr = 0.1\n[optimizer_kwargs]\nmomentum = 0.9\n' + body
                    if body.startswith("[search") else 'name = "x"\noptimizer = "sgd"\n' + body)
    with pytest.raises(SpecError, match=match) as e:
        A.load_toml(path)
    assert "\n" not in str(e.value)


def test_missing_file_and_unknown_name() -> None:
    with pytest.raises(SpecError, match="cannot be read"):
        A.get_algorithm("no/such/file.toml")
    with pytest.raises(SpecError, match="unknown algorithm 'adamw-cosin'"):
        A.get_algorithm("adamw-cosin")


def test_algoperf_aliases_in_search_space() -> None:
    a = A.Algorithm("x", "adamw", search_space={"learning_rate": {"min": 1e-4, "max": 1e-2, "scaling": "log"},
                                                "warmup_factor": {"feasible_points": [0.05]}})
    assert a.search_space["lr"] == LogUniform(1e-4, 1e-2) and "warmup" in a.search_space


def test_beta_keys_in_optimizer_kwargs_are_canonicalised() -> None:
    a = A.Algorithm("x", "adamw", {"beta1": 0.8, "one_minus_beta2": 0.01})
    assert a.optimizer_kwargs == {"betas": [0.8, 0.99]}


# ----------------------------------------------------------------------------------
# --set overrides
# ----------------------------------------------------------------------------------
def test_overrides_apply() -> None:
    base = A.get_algorithm("adamw-wsd")
    a = A.apply_overrides(base, ["lr=3e-3", "schedule.decay=0.1", "beta1=0.95", "grad_clip=1.0",
                                 "optimizer.amsgrad=true", "warmup=0.02", "batch_size=64",
                                 "search_space.lr={log_uniform = [1e-4, 1e-2]}", "description=mine"])
    assert a.lr == 3e-3 and a.schedule["decay"] == 0.1 and a.schedule["warmup"] == 0.02
    assert a.optimizer_kwargs["betas"] == pytest.approx([0.95, 0.999]) and a.optimizer_kwargs["amsgrad"] is True
    assert (a.grad_clip, a.batch_size, a.description) == (1.0, 64, "mine")
    assert a.search_space["lr"] == LogUniform(1e-4, 1e-2)
    assert base.lr == 3e-3 and base.grad_clip is None  # the original is untouched
    b = A.apply_overrides(a, ["grad_clip=none", "search_space.schedule.decay={choice=[0.2]}"])
    assert b.grad_clip is None and b.search_space["schedule.decay"].values == (0.2,)
    c = A.apply_overrides(A.get_algorithm("adamw-cosine"), ["schedule=wsd:decay=0.3,warmup=0.1"])
    assert c.schedule == {"name": "wsd", "decay": 0.3, "warmup": 0.1}
    d = A.apply_overrides(A.get_algorithm("sgd-nesterov-cosine"), ["optimizer.nesterov=false", "momentum=0.5"])
    assert d.optimizer_kwargs == {"momentum": 0.5, "nesterov": False}


@pytest.mark.parametrize(
    ("sets", "match"),
    [
        (["colour=red"], "--set colour: unknown setting"),
        (["lr"], "key=value"),
        (["schedule.nope=1"], "no parameter 'nope'"),
        (["optimizer.nesterov=true"], "no parameter 'nesterov'"),
        (["optimizer=adamz"], "unknown optimizer"),
        (["lr=-1"], "lr must be > 0"),
        (["schedule=nope"], "unknown schedule"),
    ],
)
def test_overrides_reject_bad_keys(sets: list[str], match: str) -> None:
    with pytest.raises(SpecError, match=match) as e:
        A.apply_overrides(A.get_algorithm("adamw-wsd"), sets)
    assert "\n" not in str(e.value)


# ----------------------------------------------------------------------------------
# schedule-free: warm-up in the schedule spec == the optimizer's own warmup_steps
# ----------------------------------------------------------------------------------
def test_schedulefree_schedule_warmup_equals_optimizer_warmup_steps() -> None:
    import schedulefree

    total, algo = 40, A.apply_overrides(A.get_algorithm("schedulefree-adamw"), ["weight_decay=0", "warmup=0.25"])
    ours_model, ref_model = tiny(), tiny()
    opt, sched = algo.resolved().build(ours_model, total)
    ref = schedulefree.AdamWScheduleFree(ref_model.parameters(), lr=algo.lr, betas=(0.9, 0.999),
                                         warmup_steps=round(0.25 * total))
    ref.train()

    class _NoSched:
        def step(self) -> None: ...

    train(ours_model, opt, sched, total)
    train(ref_model, ref, _NoSched(), total)
    torch.testing.assert_close(flat(ours_model), flat(ref_model), rtol=1e-6, atol=1e-7)
    assert math.isclose(opt.param_groups[0]["lr_max"], ref.param_groups[0]["lr_max"], rel_tol=1e-12)
    with eval_mode(opt):
        ref.eval()
        torch.testing.assert_close(flat(ours_model), flat(ref_model), rtol=1e-6, atol=1e-7)


def test_one_key_parser_reads_every_form() -> None:
    from steplab.algorithms.keys import Key, parse_key

    assert parse_key("learning_rate") == Key("field", "lr")
    assert parse_key("warmup_factor") == Key("warmup", "warmup")
    assert parse_key("one_minus_beta2").one_minus and parse_key("one_minus_beta2").beta == "beta2"
    assert not parse_key("beta1").one_minus and parse_key("beta1").beta == "beta1"
    assert parse_key("schedule.decay") == Key("table", "decay", "schedule")
    assert parse_key("optimizer.a.b") == Key("table", "a.b", "optimizer")
    assert parse_key("search_space.lr") == Key("table", "lr", "search_space")
    assert parse_key("schedule.").kind == parse_key("bogus").kind == "unknown"


def test_a_non_string_hyperparameter_key_is_a_spec_error() -> None:
    # it raised AttributeError ('int' object has no attribute 'startswith') before one parser read the keys
    with pytest.raises(SpecError, match="unknown hyperparameter 5"):
        A.get_algorithm("adamw-cosine").with_hyperparameters({5: 0.1})


def test_defaults_name_a_builtin_and_import_without_torch() -> None:
    import subprocess
    import sys

    assert A.DEFAULT_ALGORITHM in A.algorithm_names()
    A.Algorithm("x", A.DEFAULT_OPTIMIZER, lr=A.DEFAULT_LR, schedule=A.DEFAULT_SCHEDULE)
    assert A.stream_hyperparameters("lm")["lr"] > A.stream_hyperparameters("digits")["lr"]
    code = "import sys, steplab.algorithms; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_docstring_examples() -> None:
    import doctest

    from steplab.algorithms import keys

    assert doctest.testmod(keys).failed == 0
