"""The dynamics monitors (``steplab.monitors``): sharpness against dense eigenvalues, the
stability thresholds against simulated divergence, the gradient noise scale against a
planted one, laziness by hand, attention logits against charlm's forward, and ``measure``
leaving the run untouched."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from steplab import workloads
from steplab.errors import SpecError
from steplab.monitors import (
    MONITORS,
    Monitor,
    MonitorError,
    MonitorWarning,
    Probe,
    measure,
    parse_monitors,
)
from steplab.monitors.logits import attention_stats
from steplab.monitors.noise_scale import NoiseScale, effective_batch, two_batch_estimates
from steplab.monitors.sharpness import (
    HessianOperator,
    Sharpness,
    adam_preconditioner,
    sgd_threshold,
)

CPU = torch.device("cpu")
pytestmark = pytest.mark.usefixtures("one_thread")


class Quadratic(nn.Module):
    """``1/2 theta^T A theta`` (the batch is ignored)."""

    def __init__(self, a: np.ndarray, seed: int = 0) -> None:
        super().__init__()
        self.a = torch.as_tensor(a)
        self.theta = nn.Parameter(torch.randn(len(a), dtype=torch.float64, generator=torch.Generator().manual_seed(seed)))

    def forward(self, batch: object) -> torch.Tensor:
        return 0.5 * self.theta @ self.a @ self.theta


def _call(model: nn.Module, batch: object) -> torch.Tensor:
    return model(batch)


def _probe(model: nn.Module, batches: list, loss=_call, optimizer=None, lr: float | None = 0.01, **kw) -> Probe:
    return Probe(model, loss, batches, optimizer, kw.pop("step", 0), lr, kw.pop("initial", {}), **kw)


def _spd(d: int, eigenvalues: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if eigenvalues is None:
        m = rng.standard_normal((d, d))
        return m @ m.T / d + 0.1 * np.eye(d)
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return q @ np.diag(eigenvalues) @ q.T


@pytest.mark.parametrize("method", ["lanczos", "power"])
def test_sharpness_of_a_quadratic_is_its_top_eigenvalue(method):
    a = _spd(50) if method == "lanczos" else _spd(50, np.r_[np.linspace(0.1, 3.0, 49), 6.0])  # power: a gap
    out = Sharpness(method=method, iters=500 if method == "power" else 20, tol=1e-10)(_probe(Quadratic(a), [None]))
    assert out["sharpness"] == pytest.approx(np.linalg.eigvalsh(a)[-1], rel=1e-4)
    assert out["sharpness/threshold"] == pytest.approx(2 / 0.01)  # no optimizer: gradient descent


def test_sharpness_defaults_are_exact_on_least_squares():
    rng = np.random.default_rng(1)
    x, y = torch.as_tensor(rng.standard_normal((200, 30))), torch.as_tensor(rng.standard_normal(200))
    model = nn.Linear(30, 1, bias=False).double()

    def mse(m, batch):  # (1/2n) |Xw - y|^2: Hessian X^T X / n
        return 0.5 * (m(batch[0]).squeeze(-1) - batch[1]).square().mean()

    out = Sharpness()(_probe(model, [(x, y)], loss=mse))
    assert out["sharpness"] == pytest.approx(np.linalg.eigvalsh((x.T @ x / 200).numpy())[-1], rel=1e-4)
    # two probe batches average into one loss: the Hessian of the mean
    out2 = Sharpness(batches=2)(_probe(model, [(x[:100], y[:100]), (x[100:], y[100:])], loss=mse))
    assert out2["sharpness"] == pytest.approx(out["sharpness"], rel=1e-4)


@pytest.mark.parametrize("method", ["lanczos", "power"])
def test_sharpness_is_the_largest_algebraic_eigenvalue(method):
    # a dominant negative eigenvalue: eigsh's default which='LM' (and plain power
    # iteration) would report -5
    a = _spd(20, np.r_[-5.0, 3.0, np.linspace(-1, 1, 18)])
    out = Sharpness(method=method, iters=2000, tol=1e-12)(_probe(Quadratic(a), [None]))
    assert out["sharpness"] == pytest.approx(3.0, rel=1e-4)


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()


def _mse(model, batch):
    return 0.5 * (model(batch[0]) - batch[1]).square().sum(-1).mean()


def _adam_steps(opt_cls, steps: int, **kw):
    model = _mlp()
    gen = torch.Generator().manual_seed(1)
    batch = (torch.randn(16, 3, generator=gen, dtype=torch.float64), torch.randn(16, 2, generator=gen, dtype=torch.float64))
    opt = opt_cls(model.parameters(), **kw)
    for _ in range(steps):
        opt.zero_grad()
        _mse(model, batch).backward()
        opt.step()
    return model, opt, batch


def test_adam_preconditioner_reproduces_torch_step():
    # theta_{t+1} = theta_t - lr P_{t+1}^-1 m_{t+1} with P = (1 - b1^t)(sqrt(v / (1 - b2^t)) + eps)
    model, opt, batch = _adam_steps(torch.optim.Adam, 3, lr=0.01, betas=(0.9, 0.99), eps=1e-3)
    before = torch.cat([p.detach().reshape(-1) for p in model.parameters()]).numpy()
    opt.zero_grad()
    _mse(model, batch).backward()
    opt.step()
    after = torch.cat([p.detach().reshape(-1) for p in model.parameters()]).numpy()
    probe = _probe(model, [batch], loss=_mse, optimizer=opt, lr=0.01)
    p_diag = adam_preconditioner(probe, HessianOperator(probe, 1), 0.01)
    m = torch.cat([opt.state[p]["exp_avg"].reshape(-1) for p in model.parameters()]).numpy()
    np.testing.assert_allclose(after - before, -0.01 * m / p_diag, rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("opt_cls", [torch.optim.Adam, torch.optim.AdamW])
def test_preconditioned_sharpness_is_the_top_eigenvalue_of_p_inverse_h(opt_cls):
    model, opt, batch = _adam_steps(opt_cls, 5, lr=0.02, betas=(0.9, 0.999))
    params = list(model.parameters())
    flat = torch.cat([p.detach().reshape(-1) for p in params])

    def loss_of(vec):
        chunks, i = [], 0
        for p in params:
            chunks.append(vec[i : i + p.numel()].view_as(p))
            i += p.numel()
        out = torch.func.functional_call(model, dict(zip([n for n, _ in model.named_parameters()], chunks)), (batch[0],))
        return 0.5 * (out - batch[1]).square().sum(-1).mean()

    hessian = torch.autograd.functional.hessian(loss_of, flat).numpy()
    t = opt.state[params[0]]["step"].item()
    p_diag = np.concatenate([((1 - 0.9**t) * ((opt.state[p]["exp_avg_sq"] / (1 - 0.999**t)).sqrt() + 1e-8)).reshape(-1).numpy()
                             for p in params])
    expected = np.linalg.eigvals(hessian / p_diag[:, None]).real.max()  # eig(P^-1 H), not symmetrized
    out = Sharpness(tol=1e-10)(_probe(model, [batch], loss=_mse, optimizer=opt, lr=0.02))
    assert out["sharpness"] == pytest.approx(np.linalg.eigvalsh(hessian)[-1], rel=1e-6)
    assert out["sharpness/preconditioned"] == pytest.approx(expected, rel=1e-6)
    assert out["sharpness/preconditioned/threshold"] == pytest.approx(38 / 0.02)
    assert "sharpness/threshold" not in out  # raw sharpness has no threshold under Adam


def _diverges(lams: list[float], **sgd) -> list[bool]:
    """Which coordinates of torch SGD on ``1/2 sum lam_i x_i^2`` (a frozen quadratic; the
    coordinates evolve independently) blow up within 1000 steps."""
    x = nn.Parameter(torch.ones(len(lams), dtype=torch.float64))
    lam = torch.tensor(lams, dtype=torch.float64)
    opt = torch.optim.SGD([x], **sgd)
    for _ in range(1000):
        opt.zero_grad()
        (0.5 * (lam * x * x).sum()).backward()
        opt.step()
    return (x.abs() > 1).tolist()


@pytest.mark.parametrize("sgd,expected", [
    ({}, 200.0),
    ({"momentum": 0.9}, 380.0),
    ({"momentum": 0.9, "nesterov": True}, 135.7),
    ({"momentum": 0.9, "dampening": 0.9}, 3800.0),  # EMA momentum
])
def test_sgd_thresholds_are_where_a_frozen_quadratic_diverges(sgd, expected):
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.01, **sgd)
    threshold = sgd_threshold(opt, 0.01)
    assert threshold == pytest.approx(expected, rel=1e-3)
    assert _diverges([threshold * 0.99, threshold * 1.01], lr=0.01, **sgd) == [False, True]


def test_coupled_weight_decay_adds_to_the_hessian():
    a = _spd(10, np.linspace(1.0, 5.0, 10))
    model = Quadratic(a)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, weight_decay=0.5)
    assert Sharpness(tol=1e-10)(_probe(model, [None], optimizer=opt))["sharpness"] == pytest.approx(5.5, rel=1e-6)
    opt = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.5)  # decoupled: not in H
    assert Sharpness(tol=1e-10)(_probe(model, [None], optimizer=opt))["sharpness"] == pytest.approx(5.0, rel=1e-6)


class Planted(nn.Module):
    """``loss = theta . mean(z)``: the batch gradient is the mean of the rows ``z`` exactly."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.theta = nn.Parameter(torch.zeros(d, dtype=torch.float64))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.theta @ z.mean(0)


def _planted_draws(draws: int, d: int = 50, seed: int = 0) -> torch.Tensor:
    """Per-example gradients G + noise, G = e_1 (|G|^2 = 1), iid noise with tr(Sigma) = 100
    (B_noise = 100), as ``draws`` x 8 batches x 8 examples x d."""
    g = torch.zeros(d, dtype=torch.float64)
    g[0] = 1.0
    gen = torch.Generator().manual_seed(seed)
    return g + math.sqrt(100 / d) * torch.randn(draws, 8, 8, d, generator=gen, dtype=torch.float64)


def test_two_batch_estimators_are_unbiased():
    # McCandlish et al. 2018, App. A; B_small = 8, B_big = 64 (the 8 small batches nested)
    z = _planted_draws(2000)
    small = z.mean(2).square().sum(-1).mean(1)  # |G_Bs|^2 averaged over the 8 batches
    big = z.mean((1, 2)).square().sum(-1)
    g2, trace = two_batch_estimates(small.numpy(), big.numpy(), 8, 64)
    # standard errors over 2000 draws: ~0.011 for |G|^2 and ~0.17 for tr(Sigma)
    assert g2.mean() == pytest.approx(1.0, abs=0.05) and trace.mean() == pytest.approx(100.0, abs=1.0)
    assert g2.min() < 0  # single estimates go negative: never divide them
    assert two_batch_estimates(2.0, 1.2, 8, 32) == pytest.approx(((32 * 1.2 - 8 * 2.0) / 24, 0.8 / (1 / 8 - 1 / 32)))


def test_finite_population_correction_makes_epoch_batches_unbiased():
    # 4 disjoint batches of 8 from one shuffle of N = 48 fixed per-example gradients (one
    # epoch's batches): corrected sizes B (N-1)/(N-B) make both estimates unbiased
    gen = torch.Generator().manual_seed(5)
    per_example = torch.randn(48, 6, generator=gen, dtype=torch.float64) + 0.3
    truth_g2 = float(per_example.mean(0).square().sum())
    truth_trace = float(per_example.var(0, unbiased=False).sum())
    perms = torch.stack([torch.randperm(48, generator=gen)[:32] for _ in range(4000)])
    batches = per_example[perms].view(4000, 4, 8, 6)
    small = batches.mean(2).square().sum(-1).mean(1).numpy()
    big = batches.mean((1, 2)).square().sum(-1).numpy()
    g2, trace = two_batch_estimates(small, big, effective_batch(8, 48), effective_batch(32, 48))
    assert g2.mean() == pytest.approx(truth_g2, rel=0.03) and trace.mean() == pytest.approx(truth_trace, rel=0.03)
    naive_g2, _ = two_batch_estimates(small, big, 8, 32)
    assert naive_g2.mean() < 0.9 * truth_g2  # uncorrected: |G|^2 too small (0.81x here)
    model = Planted(6)
    out = NoiseScale(batches=4, beta=0.0, population=48)(_probe(model, list(batches[0])))
    assert (out["gns/g2"], out["gns/trace_sigma"]) == pytest.approx((g2[0], trace[0]), rel=1e-9)
    assert effective_batch(48, 48) == math.inf and effective_batch(8, 0) == 8


def test_the_ema_ratio_recovers_a_planted_noise_scale():
    # d = 500 spreads the same tr(Sigma) over more coordinates: single estimates ~3x less
    # noisy than at d = 50, so 400 draws pin the EMA ratio to ~2%
    model, monitor = Planted(500), NoiseScale(batches=8, beta=0.99)
    for z in _planted_draws(400, d=500, seed=1):
        out = monitor(_probe(model, list(z)))
    assert out["gns/b_simple"] == pytest.approx(100.0, rel=0.10)
    assert out["gns/critical_batch"] == out["gns/b_simple"] and out["gns/batch_size"] == 8


def test_noise_scale_of_linear_regression_with_planted_noise():
    # per-example gradients x_i (x_i . w - y_i) of 1/2 mean (x.w - y)^2 over a data set of
    # 4096 points; batches drawn with replacement: the truth is tr(Cov g_i) / |mean g_i|^2
    rng = np.random.default_rng(2)
    n, d = 4096, 10
    x = rng.standard_normal((n, d))
    y = x @ rng.standard_normal(d) + 2.0 * rng.standard_normal(n)
    w = np.zeros(d)
    per_example = x * (x @ w - y)[:, None]
    truth = per_example.var(0).sum() / np.square(per_example.mean(0)).sum()
    model = nn.Linear(d, 1, bias=False).double()
    with torch.no_grad():
        model.weight.zero_()

    def mse(m, batch):
        return 0.5 * (m(batch[0]).squeeze(-1) - batch[1]).square().mean()

    monitor, xt, yt = NoiseScale(batches=4, beta=0.98), torch.as_tensor(x), torch.as_tensor(y)
    for _ in range(300):  # within 5% of the truth on seeds 2-7
        idx = torch.as_tensor(rng.integers(0, n, (4, 16)))
        out = monitor(_probe(model, [(xt[i], yt[i]) for i in idx], loss=mse))
    assert out["gns/b_simple"] == pytest.approx(truth, rel=0.10)


def test_noise_scale_does_not_depend_on_the_loss_scale():
    gen = torch.Generator().manual_seed(3)
    batches = list(torch.randn(4, 8, 5, generator=gen, dtype=torch.float64) + 1.0)
    model = Planted(5)
    plain = NoiseScale(batches=4)(_probe(model, batches))
    scaled = NoiseScale(batches=4)(_probe(model, batches, loss=lambda m, b: 7.0 * m(b)))
    assert scaled["gns/b_simple"] == pytest.approx(plain["gns/b_simple"], rel=1e-9)
    assert scaled["gns/g2"] == pytest.approx(49 * plain["gns/g2"], rel=1e-9)


def test_laziness_by_hand():
    model = nn.Sequential(nn.Linear(2, 1, bias=False), nn.Linear(1, 1, bias=False)).double()
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[3.6, 4.8]]))
        model[1].weight.fill_(12.0)
    initial = {"0.weight": torch.tensor([[3.0, 4.0]], dtype=torch.float64), "1.weight": torch.tensor([[12.0]], dtype=torch.float64)}
    out = MONITORS["laziness"]()(_probe(model, [], initial=initial))
    # |delta| = |(0.6, 0.8, 0)| = 1, |theta_0| = |(3, 4, 12)| = 13
    assert out["laziness"] == pytest.approx(1 / 13) and out["laziness/squared"] == pytest.approx(1 / 169)
    assert out["laziness/0"] == pytest.approx(0.2) and out["laziness/1"] == 0.0
    assert out["laziness/weight_norm"] == pytest.approx(math.sqrt(3.6**2 + 4.8**2 + 144))
    with pytest.raises(MonitorError):
        MONITORS["laziness"]()(_probe(model, []))


def test_attention_stats_by_hand():
    scores = torch.tensor([[[0.0, -math.inf], [1.0, 1.0]]])
    top, entropy = attention_stats(scores)
    assert top == 1.0 and entropy == pytest.approx(math.log(2) / 2)


@pytest.mark.parametrize("variant", ["base", "qk-ln"])
def test_charlm_attention_logits_are_the_attention_of_forward(variant):
    from steplab.workloads import charlm

    wl = workloads.get("charlm", variant)
    model = wl.init_model(0)
    block = model.blocks[0]
    if block.q_ln is not None:
        with torch.no_grad():
            block.q_ln.weight.fill_(2.0)
    x = torch.randn(3, 16, charlm.D_MODEL, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        scores = block.attention_logits(x)
        assert scores.shape == (3, charlm.N_HEADS, 16, 16)
        assert torch.isinf(scores).sum() == 3 * charlm.N_HEADS * 16 * 15 // 2  # the future keys
        _, _, v = block._heads(x)
        y = torch.softmax(scores, dim=-1) @ v  # the attention forward's SDPA computes
        h = x + block.proj(y.transpose(1, 2).reshape(3, 16, charlm.D_MODEL))
        torch.testing.assert_close(h + block.mlp(block.ln2(h)), block(x), rtol=1e-5, atol=1e-5)
    out = measure([MONITORS["logits"]()], _probe(model, [next(wl.batches(5, CPU))], loss=wl.loss))
    assert 0 < out["dynamics/logits/attn_entropy/0"] <= math.log(charlm.CONTEXT)
    assert out["dynamics/logits/attn_max/0"] > 0 and out["dynamics/logits/output_max"] >= out["dynamics/logits/output_rms"] > 0


class _Draws(Monitor):
    """A test double: draws from the torch RNG and records the model's mode."""

    name = "draws"

    def __call__(self, probe):
        self.training = probe.model.training
        return {"draws": float(torch.rand(()))}


def test_measure_leaves_the_run_untouched():
    wl = workloads.get("modarith", "p59")
    model = wl.init_model(0)
    model.out.eval()  # a submodule in its own mode stays so
    grads = {n: torch.full_like(p, 0.5) for n, p in model.named_parameters()}
    for n, p in model.named_parameters():
        p.grad = grads[n]
    params = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.AdamW(model.parameters(), lr=0.01)
    batches = [next(wl.batches(9, CPU))] * 2
    probe = _probe(model, batches, loss=wl.loss, optimizer=opt, lr=0.01, initial=params, workload=wl)
    monitors = [*parse_monitors("sharpness,gns:batches=2,laziness,logits,grokking"), _Draws()]
    torch.manual_seed(123)
    rng = torch.get_rng_state()
    with torch.no_grad():  # grad mode on inside whatever the caller's
        out = measure(monitors, probe)
    assert torch.equal(torch.get_rng_state(), rng)
    assert model.training and not model.out.training and monitors[-1].training is False
    assert all(p.grad is grads[n] and torch.equal(p.grad, torch.full_like(p, 0.5)) for n, p in model.named_parameters())
    assert all(torch.equal(p, params[n]) for n, p in model.named_parameters())
    names = {k.split("/")[1] for k in out}
    assert names == {"sharpness", "gns", "laziness", "logits", "grokking", "draws"}
    assert all(f"dynamics/{n}/cost_s" in out for n in names)


def test_measure_does_not_change_a_training_run():
    def run(with_monitors: bool) -> list[float]:
        wl = workloads.get("modarith", "p59")
        model = wl.init_model(0)
        opt = torch.optim.AdamW(model.parameters(), lr=0.05)
        monitors = parse_monitors("sharpness:method=power:iters=3,gns:batches=2,laziness,grokking")
        initial = {n: p.detach().clone() for n, p in model.named_parameters()}
        probe_batches = [next(wl.batches(77, CPU))] * 2
        losses, stream = [], wl.batches(0, CPU)
        for step in range(4):
            if with_monitors:
                measure(monitors, _probe(model, probe_batches, loss=wl.loss, optimizer=opt, step=step,
                                         initial=initial, workload=wl))
            loss = wl.loss(model, next(stream))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return losses

    assert run(True) == run(False)


def test_a_monitor_that_does_not_apply_warns_once():
    model = nn.Linear(3, 2)
    monitors = parse_monitors("grokking,laziness")
    probe = _probe(model, [torch.zeros(1, 3)], initial={n: p.detach().clone() + 1 for n, p in model.named_parameters()})
    with pytest.warns(MonitorWarning, match="grokking"):
        out = measure(monitors, probe)
    assert "dynamics/laziness" in out and not any("grokking" in k for k in out)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        measure(monitors, probe)  # the second time: silent


def test_parse_monitors():
    s, g = parse_monitors("sharpness:iters=30:method=power,gns:batches=4")
    assert (s.iters, s.method, g.batches) == (30, "power", 4)
    s, g = parse_monitors(["sharpness:iters=30", "gns"])  # a list of strings
    assert s.iters == 30 and g.name == "gns"
    s, lz = parse_monitors("sharpness:iters=30,method=power,laziness")  # key=value after a comma
    assert s.method == "power" and lz.name == "laziness"
    for bad, words in [("sharpnes", ["sharpnes", "sharpness, gns, laziness, logits, grokking"]),
                       ("gns:batch=4", ["batch=4", "batches"]), ("gns:batches=many", ["int", "many"]),
                       ("gns:batches=1", [">= 2"]), ("laziness,laziness", ["twice"]),
                       ("sharpness:method=newton", ["lanczos"])]:
        with pytest.raises(SpecError) as err:
            parse_monitors(bad)
        assert "\n" not in str(err.value) and all(w in str(err.value) for w in words), str(err.value)
    assert [m.needs_initial for m in parse_monitors("laziness,gns")] == [True, False]
    assert [m.probe_batches for m in parse_monitors("gns,sharpness:batches=2,logits")] == [8, 2, 1]
