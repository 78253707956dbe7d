"""charlm's stability variants (Wortsman et al. 2023): qk-layernorm and z-loss; and the base
variant unchanged by them."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from steplab import workloads
from steplab.workloads import charlm

CPU = torch.device("cpu")


pytestmark = pytest.mark.usefixtures("one_thread")


def _batch(wl):
    return next(wl.batches(0, CPU))


def test_base_variant_is_unchanged():
    # recorded before the variants were added: init_model(0), the first batch of seed 0 and
    # the validation loss at init (bit-identical on the machine that recorded them)
    wl = workloads.get("charlm")
    model = wl.init_model(0)
    assert wl.loss(model, _batch(wl)).item() == pytest.approx(4.800872802734375, rel=1e-6, abs=0)
    model.eval()
    assert wl.evaluate(model, CPU)["validation/loss"] == pytest.approx(4.822663307189941, rel=1e-6, abs=0)
    assert sum(p.numel() for p in model.parameters()) == 67495
    assert all(b.q_ln is None and b.k_ln is None for b in model.blocks)


def test_variants_share_base_weights():
    base = workloads.get("charlm").init_model(3).state_dict()
    for variant in ("qk-ln", "zloss", "qk-ln+zloss"):
        sd = workloads.get("charlm", variant).init_model(3).state_dict()
        assert all(torch.equal(base[k], sd[k]) for k in base)
        extra = set(sd) - set(base)
        assert extra == ({"blocks.0.q_ln.weight", "blocks.0.q_ln.bias", "blocks.0.k_ln.weight", "blocks.0.k_ln.bias"}
                         if "qk-ln" in variant else set())


def _captured_qk(variant, monkeypatch):
    """The q and k that reach the dot product (scaled_dot_product_attention's inputs)."""
    seen = {}
    real = F.scaled_dot_product_attention

    def spy(q, k, v, **kw):
        seen["q"], seen["k"] = q.detach(), k.detach()
        return real(q, k, v, **kw)

    monkeypatch.setattr(charlm.F, "scaled_dot_product_attention", spy)
    wl = workloads.get("charlm", variant)
    model = wl.init_model(0)
    with torch.no_grad():  # perturb the qk LayerNorm gains: their output must be gain * normalized + bias
        for block in model.blocks:
            if block.q_ln is not None:
                block.q_ln.weight.fill_(2.0)
                block.k_ln.bias.fill_(0.5)
    hooked = {}
    if variant == "qk-ln":
        def hook(module, inputs, output):  # returns None: the output is left as it is
            hooked["q_in"], hooked["q_out"] = inputs[0].detach(), output.detach()

        model.blocks[0].q_ln.register_forward_hook(hook)
    wl.loss(model, _batch(wl))
    return seen, hooked


def test_qk_layernorm_normalizes_queries_and_keys(monkeypatch):
    seen, hooked = _captured_qk("qk-ln", monkeypatch)
    q, k = seen["q"], seen["k"]
    assert q.shape == (32, charlm.N_HEADS, charlm.CONTEXT, charlm.D_MODEL // charlm.N_HEADS)
    # per head and position over the head dimension: q = 2 * normalized, k = normalized + 0.5
    assert torch.allclose(q.mean(-1), torch.zeros(()), atol=1e-5)
    assert torch.allclose(q.var(-1, unbiased=False), torch.full((), 4.0), atol=1e-3)
    assert torch.allclose(k.mean(-1), torch.full((), 0.5), atol=1e-5)
    assert torch.allclose(k.var(-1, unbiased=False), torch.ones(()), atol=1e-3)
    # the forward hook on q_ln: raw per-head queries in (not normalized), exactly q out
    assert not torch.allclose(hooked["q_in"].var(-1, unbiased=False), torch.ones(()), atol=0.1)
    assert torch.equal(hooked["q_out"], q)
    base, _ = _captured_qk("base", monkeypatch)
    assert not torch.allclose(base["q"].var(-1, unbiased=False), torch.ones(()), atol=0.1)


def test_zloss_adds_exactly_c_mean_logsumexp_squared():
    wl_z, wl_b = workloads.get("charlm", "zloss"), workloads.get("charlm")
    model = wl_z.init_model(0)
    batch = _batch(wl_z)
    with torch.no_grad():
        logits = model(batch[:, :-1])
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))
        z = torch.logsumexp(logits, dim=-1)  # log Z per predicted character
        expected = ce + 1e-4 * (z**2).mean()
        assert wl_z.loss(model, batch).item() == pytest.approx(expected.item(), rel=1e-7)
        assert wl_b.loss(model, batch).item() == pytest.approx(ce.item(), rel=1e-7)
        diff = wl_z.loss(model, batch) - wl_b.loss(model, batch)
        assert diff.item() == pytest.approx(1e-4 * (z.double() ** 2).mean().item(), rel=1e-3)
    # validation/loss stays the cross-entropy: the same model scores the same in both variants
    model.eval()
    assert wl_z.evaluate(model, CPU) == wl_b.evaluate(model, CPU)
    assert charlm.Z_LOSS == {"zloss": 1e-4, "qk-ln+zloss": 1e-4}
