"""The MNIST-1D workload (``steplab.workloads.mnist1d*``, Greydanus 2020): the generator's
output, its safety (no network, the global random states kept, an atomic disk cache), the
authors' model zoo and one short run through steplab's loop."""

from __future__ import annotations

import random
import socket
import urllib.request

import numpy as np
import pytest
import torch

from steplab import workloads
from steplab.errors import WorkloadError
from steplab.workloads import mnist1d, mnist1d_data, mnist1d_models

pytestmark = pytest.mark.usefixtures("one_thread")
CPU = torch.device("cpu")


def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every way out of the machine raises (sockets, urllib, requests)."""
    import requests

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("MNIST-1D generation tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(requests, "get", refuse)
    monkeypatch.setattr(requests.Session, "request", refuse)


@pytest.fixture(scope="module")
def default_set(tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    """The default 5,000-signal set, generated (not read from any cache) with no network."""
    with pytest.MonkeyPatch.context() as mp:
        _no_network(mp)
        mp.chdir(tmp_path_factory.mktemp("cwd"))  # get_dataset would write a pickle here
        return mnist1d_data.generate()


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch: pytest.MonkeyPatch):
    """An empty steplab cache folder and an empty in-process cache."""
    monkeypatch.setenv(mnist1d_data.CACHE_ENV, str(tmp_path))
    monkeypatch.setattr(mnist1d_data, "_MEMORY", {})
    return tmp_path / "mnist1d"


def test_generator_defaults_are_the_packages():
    from mnist1d.data import get_dataset_args

    package = get_dataset_args(as_dict=True)
    package.pop("url")
    assert mnist1d_data.GENERATOR_ARGS == package


def test_default_set_shapes_balance_and_normalisation(default_set):
    x, y, xt, yt = (default_set[k] for k in mnist1d_data.ARRAYS)
    assert x.shape == (4000, 40) and xt.shape == (1000, 40)
    assert x.dtype == np.float32 and y.dtype == np.int64
    # num_samples // 10 = 500 signals of each digit, split 80/20 by position after a shuffle
    assert np.bincount(np.concatenate([y, yt]), minlength=10).tolist() == [500] * 10
    assert 350 < np.bincount(y).min() <= 400 <= np.bincount(y).max() < 450
    # standardised over train and test together (not each split)
    both = np.concatenate([x, xt]).astype(np.float64)
    assert abs(both.mean()) < 1e-6 and abs(both.std() - 1.0) < 1e-6
    assert abs(x.std() - 1.0) > 1e-4  # ... so a split alone is not exactly unit-variance


def test_default_labels_are_the_published_sequence(default_set):
    if np.random.RandomState(42).random_sample() != 0.3745401188473625:
        pytest.skip("numpy's legacy RandomState stream changed: the generated set is not the published one")
    # y[:10] of make_dataset(get_dataset_args()) and of the authors' frozen mnist1d_data.pkl
    assert default_set["y"][:10].tolist() == [2, 6, 4, 5, 6, 6, 6, 0, 3, 1]


def test_generation_is_offline_and_keeps_the_global_random_states(monkeypatch, tmp_path):
    _no_network(monkeypatch)
    monkeypatch.chdir(tmp_path)
    random.seed(7)
    np.random.seed(7)
    expected = (random.random(), np.random.rand())
    random.seed(7)
    np.random.seed(7)
    small = mnist1d_data.generate(num_samples=100)
    assert (random.random(), np.random.rand()) == expected  # make_dataset reseeds both to 42
    assert np.bincount(np.concatenate([small["y"], small["y_test"]])).tolist() == [10] * 10
    assert list(tmp_path.iterdir()) == []  # no mnist1d_data.pkl written to the working folder
    # the seed, not the caller's state, fixes the set
    np.random.seed(123)
    assert np.array_equal(mnist1d_data.generate(num_samples=100)["x"], small["x"])


def test_disk_cache_is_written_whole_and_read_back(tmp_cache, monkeypatch):
    first = mnist1d_data.dataset(num_samples=100)
    files = list(tmp_cache.iterdir())
    assert [f.suffix for f in files] == [".npz"] and not files[0].name.startswith(".tmp-")
    monkeypatch.setattr(mnist1d_data, "_MEMORY", {})

    def no_generation(*args: object, **kwargs: object) -> None:
        raise AssertionError("regenerated although the cache holds the set")

    monkeypatch.setattr(mnist1d_data, "generate", no_generation)
    again = mnist1d_data.dataset(num_samples=100)
    assert all(np.array_equal(first[k], again[k]) for k in mnist1d_data.ARRAYS)
    assert mnist1d_data.dataset(num_samples=100) is again  # kept in the process


def test_a_damaged_cache_file_is_regenerated(tmp_cache):
    path = mnist1d_data._cache_file(100, 42)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not an npz file")
    data = mnist1d_data.dataset(num_samples=100)
    assert data["x"].shape == (80, 40)
    assert mnist1d_data._read(path, 100) is not None  # replaced by a good file


def test_bad_num_samples_is_one_line():
    with pytest.raises(WorkloadError, match="num_samples") as err:
        mnist1d_data.generate(num_samples=0)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "variant,kind,params",
    [
        ("logreg", "logreg", 40 * 10 + 10),
        ("mlp", "mlp", (40 * 100 + 100) + (100 * 100 + 100) + (100 * 10 + 10)),
        # conv 1->25 k5, 25->25 k3 twice, then 25 channels x length 5 -> 10
        ("base", "cnn", (25 * 5 + 25) + 2 * (25 * 25 * 3 + 25) + (125 * 10 + 10)),
        ("large", "cnn", 5210),
    ],
)
def test_the_authors_parameter_counts(variant, kind, params):
    wl = workloads.get("mnist1d", variant)
    assert wl.model_kind == kind
    model = wl.init_model(0)
    assert mnist1d_models.count_parameters(model) == params
    assert params in (410, 15_210, 5_210)
    assert model(torch.zeros(3, 40)).shape == (3, 10)


def test_mlp_is_residual_and_init_is_seeded():
    torch.manual_seed(0)
    expected = torch.rand(2)
    torch.manual_seed(0)
    m = mnist1d_models.build("mlp", 3)
    assert torch.equal(torch.rand(2), expected)  # the global torch generator is untouched
    assert all(torch.equal(a, b) for a, b in zip(m.parameters(), mnist1d_models.build("mlp", 3).parameters()))
    x = torch.randn(4, 40)
    h1 = torch.relu(x @ m.linear1.weight.T + m.linear1.bias)
    h2 = h1 + torch.relu(h1 @ m.linear2.weight.T + m.linear2.bias)
    assert torch.allclose(m(x), h2 @ m.linear3.weight.T + m.linear3.bias, atol=1e-6)


def test_workload_shape_budget_and_target():
    wl = workloads.get("mnist1d")
    assert isinstance(wl, mnist1d.MNIST1D) and wl.batch_size == 100
    assert (wl.target.metric, wl.target.mode) == ("validation/accuracy", "max")
    assert workloads.get("mnist1d:large").num_samples == 50_000
    # the paper's ordering of the three models is the ordering of their targets
    targets = {v: workloads.get("mnist1d", v).target.value for v in ("logreg", "mlp", "base")}
    assert 0.1 < targets["logreg"] < targets["mlp"] < targets["base"] < 1.0


def test_unknown_variant_is_one_line():
    with pytest.raises(WorkloadError) as err:
        workloads.get("mnist1d", "gru")
    msg = str(err.value)
    assert "\n" not in msg and "'gru'" in msg and "logreg" in msg and "large" in msg


def test_a_short_run_through_steplabs_loop_learns(default_set, monkeypatch):
    from steplab import algorithms
    from steplab.training.config import TrainConfig
    from steplab.training.loop import run_trial

    monkeypatch.setattr(mnist1d, "_CACHE", {})
    monkeypatch.setattr(mnist1d_data, "_MEMORY", {(5000, 42): default_set})  # no second generation
    wl = workloads.get("mnist1d", budget_steps=40)
    before = wl.evaluate(wl.init_model(0).eval(), CPU)["validation/accuracy"]
    algo = algorithms.get_algorithm(wl.default_algorithm).with_hyperparameters(wl.default_hyperparameters)
    r = run_trial(wl, algo, 0, config=TrainConfig(threads=1, record_norms=False))
    assert r.status == "budget", (r.status, r.message)
    assert set(r.final_metrics) >= {"validation/accuracy", "validation/loss"}
    # 40 steps (one epoch) lift the CNN from chance (~0.1) well above it
    assert before < 0.2 and r.final_metrics["validation/accuracy"] > 0.25, (before, r.final_metrics)
