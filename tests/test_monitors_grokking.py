"""The grokking monitor (Fourier IPR, grokking delay) and modarith's ``corrupt-<f>`` and
``init-x<s>`` variants, with the existing variants' data unchanged."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from steplab import workloads
from steplab.errors import WorkloadError
from steplab.monitors import Probe
from steplab.monitors.grokking import Grokking, fourier_ipr
from steplab.workloads import modarith

CPU = torch.device("cpu")
pytestmark = pytest.mark.usefixtures("one_thread")


def test_ipr_check_values():
    # Doshi et al. 2023 eq. 3 with the real DFT (their code's rfft): p = 97 has 49 coefficients
    p, tokens = 97, torch.arange(97, dtype=torch.float64)
    assert float(fourier_ipr(torch.cos(2 * math.pi * 5 * tokens / p))) == pytest.approx(1.0, abs=1e-12)
    assert float(fourier_ipr(torch.eye(p)[3])) == pytest.approx(1 / 49, abs=1e-12)
    noise = fourier_ipr(torch.randn(p, 2000, generator=torch.Generator().manual_seed(0), dtype=torch.float64), dim=0)
    assert float(noise.mean()) == pytest.approx(0.040, abs=0.003)
    assert float(fourier_ipr(torch.zeros(p))) == 0.0


def _fourier_model(p: int) -> modarith.EmbedMLP:
    """An EmbedMLP whose embedding columns, hidden input weights per token and read-out
    columns are all single Fourier modes: every IPR is 1."""
    model = modarith.EmbedMLP(p)
    tokens = torch.arange(p, dtype=torch.float32)
    with torch.no_grad():
        for j in range(modarith.EMBED):
            model.embed.weight[:, j] = torch.cos(2 * math.pi * (j % 5 + 1) * tokens / p)
        model.hidden.weight.zero_()
        model.hidden.weight[:, 0] = 1.0  # every neuron reads embedding column 0 of a ...
        model.hidden.weight[:, modarith.EMBED] = 1.0  # ... and of b
        for n in range(modarith.HIDDEN):
            model.out.weight[:, n] = torch.sin(2 * math.pi * (n % 7 + 1) * tokens / p)
    return model


def test_grokking_ipr_of_a_fourier_model_is_one_and_of_the_init_is_low():
    wl = workloads.get("modarith", "p59")
    probe = Probe(_fourier_model(59), wl.loss, [], None, 0, None, {}, workload=None)
    out = Grokking()(probe)  # no workload: the IPRs only
    assert out == pytest.approx({"grokking/ipr": 1.0, "grokking/ipr_neurons": 1.0}, abs=1e-6)
    init = Grokking()(Probe(wl.init_model(0), wl.loss, [], None, 0, None, {}, workload=wl))
    assert init["grokking/ipr"] < 0.1 and init["grokking/ipr_neurons"] < 0.1  # Gaussian-like
    assert init["grokking/train_accuracy"] < 0.1 and "grokking/delay" not in init


class Oracle(nn.Module):
    """Predicts ``a + b mod p`` right on the pairs in ``known`` (by a lookup), 0 elsewhere."""

    def __init__(self, p: int) -> None:
        super().__init__()
        self.p, self.embed, self.known = p, nn.Embedding(p, 4), torch.zeros(p, p, dtype=torch.bool)

    def forward(self, pairs: torch.Tensor) -> torch.Tensor:
        right = self.known[pairs[:, 0], pairs[:, 1]]
        answer = torch.where(right, (pairs[:, 0] + pairs[:, 1]) % self.p, torch.zeros_like(pairs[:, 0]))
        return nn.functional.one_hot(answer, self.p).float()


def test_grokking_delay_from_the_first_crossings():
    wl = workloads.get("modarith", "p59")
    model, monitor = Oracle(59), Grokking()
    x_train, _ = wl.train_set(CPU)
    seen = {}
    for step, phase in [(0, "chance"), (100, "memorise"), (200, "memorise"), (300, "grok"), (400, "grok")]:
        if phase == "memorise":
            model.known[x_train[:, 0], x_train[:, 1]] = True
        if phase == "grok":
            model.known[:] = True
        seen[step] = monitor(Probe(model, wl.loss, [], None, step, None, {}, workload=wl))
    assert seen[0]["grokking/train_accuracy"] < 0.1 and "grokking/fit_step" not in seen[0]
    assert seen[100]["grokking/train_accuracy"] == 1.0 and seen[100]["grokking/val_accuracy"] < 0.1
    assert seen[200]["grokking/fit_step"] == 100 and "grokking/delay" not in seen[200]
    assert seen[400]["grokking/generalize_step"] == 300 and seen[400]["grokking/delay"] == 200


def test_corrupt_variant_redraws_exactly_floor_f_n_training_labels():
    clean = workloads.get("modarith")
    x0, y0 = clean.train_set(CPU)
    for f in (0.1, 0.3):
        wl = workloads.get(f"modarith:corrupt-{f}")
        x, y = wl.train_set(CPU)
        index, labels = modarith.corruption(len(y0), 97, f)
        assert len(index) == len(set(index.tolist())) == math.floor(f * len(y0))  # 282, 846
        assert torch.equal(x, x0) and torch.equal(y[index], labels)
        untouched = torch.ones(len(y0), dtype=torch.bool)
        untouched[index] = False
        assert torch.equal(y[untouched], y0[untouched])
        changed = int((y != y0).sum())  # a uniform draw keeps the true label 1 time in 97
        assert abs(changed - len(index) * 96 / 97) < 4 * math.sqrt(len(index) / 97)
        xv, yv = wl.validation_set(CPU)
        assert torch.equal(xv, clean.validation_set(CPU)[0]) and torch.equal(yv, (xv[:, 0] + xv[:, 1]) % 97)
        batch_x, batch_y = next(wl.batches(0, CPU))  # training batches carry the corrupted labels
        assert not torch.equal(batch_y, (batch_x[:, 0] + batch_x[:, 1]) % 97)
    assert workloads.get("modarith:frac50+corrupt-0.35").setting == modarith.Setting("frac50", 97, 0.5, 0.35, 1.0)


def _original_data(p: int, frac: float) -> tuple[torch.Tensor, ...]:
    """modarith's data as the code built it before the corrupt/init variants (kept here)."""
    a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    pairs = torch.stack([a.reshape(-1), b.reshape(-1)], dim=1)
    y = (pairs[:, 0] + pairs[:, 1]) % p
    perm = torch.randperm(p * p, generator=torch.Generator().manual_seed(0))
    n_train = round(frac * p * p)
    tr, va = perm[:n_train], perm[n_train:][:1024]
    return pairs[tr], y[tr], pairs[va], y[va]


@pytest.mark.parametrize("variant,p,frac", [("base", 97, 0.3), ("frac50", 97, 0.5), ("p59", 59, 0.4)])
def test_existing_variants_are_unchanged(variant, p, frac):
    wl = workloads.get("modarith", variant)
    built = (*wl.train_set(CPU), *wl.validation_set(CPU))
    assert all(torch.equal(u, v) for u, v in zip(built, _original_data(p, frac), strict=True))
    torch.manual_seed(4)
    reference = modarith.EmbedMLP(p)
    assert all(torch.equal(u, v) for u, v in zip(wl.init_model(4).parameters(), reference.parameters(), strict=True))
    assert wl.default_hyperparameters == {"lr": 0.07 if variant == "frac50" else 0.14, "weight_decay": 1.0, "beta2": 0.98}


def test_init_scale_variant_scales_the_base_weights():
    base, scaled = workloads.get("modarith").init_model(2), workloads.get("modarith:corrupt-0.1+init-x2.5").init_model(2)
    assert all(torch.equal(2.5 * u, v) for u, v in zip(base.parameters(), scaled.parameters(), strict=True))
    assert workloads.get("modarith:init-x4").key == "modarith:init-x4"


@pytest.mark.parametrize("variant", ["corrupt-1.5", "corrupt-0.10", "base+corrupt-0.1", "init-x2+corrupt-0.1",
                                     "init-x0", "corrupt-", "frac30", "p59+init-xbig"])
def test_malformed_variants_raise_one_line(variant):
    with pytest.raises(WorkloadError) as err:
        workloads.get("modarith", variant)
    assert "\n" not in str(err.value) and "corrupt-0.1" in str(err.value)


def test_alpha_variant_centres_the_output_and_scales_the_gradient_by_alpha():
    # Kumar et al. 2023: output alpha * (f - f0). At step 0 it is exactly 0 and the squared
    # error to the one-hot label is 1 per example; its gradient is alpha * J^T dL/df, so the
    # gradient at alpha is alpha times the one at 1, and an SGD step with lr / alpha^2 moves
    # the weights 1/alpha as far while the output moves the same to first order.
    base = workloads.get("modarith", "p59").init_model(3)
    x, y = next(workloads.get("modarith", "p59").batches(0, CPU))
    grads, moves, outputs = {}, {}, {}
    for alpha in (1.0, 4.0):
        wl = workloads.get("modarith", f"p59+alpha-{alpha:g}")
        model = wl.init_model(3)
        assert all(torch.equal(u, v) for u, v in zip(model.parameters(), base.parameters(), strict=True))
        assert torch.count_nonzero(model(x)) == 0 and torch.count_nonzero(model(wl.validation_set(CPU)[0])) == 0
        loss = wl.loss(model, (x, y))
        assert float(loss.detach()) == 1.0
        grads[alpha] = torch.autograd.grad(loss, list(model.parameters()))
        with torch.no_grad():
            for p, g in zip(model.parameters(), grads[alpha], strict=True):
                p.sub_(1e-3 / alpha**2 * g)
            moves[alpha] = math.sqrt(sum(float((p - q).square().sum()) for p, q in zip(model.parameters(), base.parameters())))
            outputs[alpha] = model(x)
    for g1, g4 in zip(grads[1.0], grads[4.0], strict=True):
        torch.testing.assert_close(g4, 4 * g1, rtol=1e-5, atol=1e-9)
    assert moves[4.0] == pytest.approx(moves[1.0] / 4, rel=1e-4)
    torch.testing.assert_close(outputs[4.0], outputs[1.0], rtol=0.02, atol=2e-5)
    with pytest.raises(WorkloadError):
        workloads.get("modarith", "alpha-0")
