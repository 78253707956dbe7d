"""A real multi-node run: a Ray cluster of two nodes on this machine (``ray.cluster_utils.
Cluster``, 1 CPU each, each node its own raylet and worker processes, as ``ray start --head``
plus ``ray start --address`` would make) and a throwaway PostgreSQL server (conftest's
``postgres_server``) run a small benchmark; its trials must have run on both nodes and be
stored exactly as a serial run stores them (times excepted)."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest

from steplab.store import open_store
from steplab.studies import bench
from steplab.training.executors import RayExecutor, SerialExecutor

pytestmark = [pytest.mark.slow, pytest.mark.ray]

#: 2 algorithms x 2 workloads x 2 trials = 8 trials of a few hundred ms each
SPEC = bench.BenchSpec(
    algorithms=("adamw-cosine", "sgd-nesterov-cosine"),
    trials=2,
    workloads=(bench.SuiteEntry("logreg", budget_steps=60), bench.SuiteEntry("digits-mlp", budget_steps=40)),
    name="two-nodes",
)
#: a generous guard against a hang (never a measure of speed)
HANG_S = 300


def _timing(name: str) -> bool:
    return name.startswith("time/") or name.endswith("_time_s")


def _number(value: float) -> Any:
    return "nan" if isinstance(value, float) and math.isnan(value) else value


def stored(url: str) -> dict[str, dict[str, Any]]:
    """trial key -> what a serial and a cluster run must share: status, steps, the loss and
    lr traces, the evaluations, and every final metric but the timing ones."""
    out: dict[str, dict[str, Any]] = {}
    with open_store(url) as store:
        for trial in store.list_trials():
            trace = store.steps(trial.id)
            out[store.trial_info(trial.id)["key"]] = {
                "status": trial.status,
                "steps": trial.steps,
                "final_metrics": {k: _number(v) for k, v in trial.final_metrics.items() if not _timing(k)},
                "step": [int(s) for s in trace["step"]],
                "loss": [_number(float(v)) for v in trace["loss"]],
                "lr": [float(v) for v in trace["lr"]],
                "evals": [(e.step, e.metric, _number(e.value)) for e in store.evals(trial.id)],
            }
    return out


def workers(url: str) -> list[str]:
    """The ``worker`` column (``host:pid:nonce``) of every stored trial."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [row[0] for row in conn.execute(text("SELECT worker FROM trials ORDER BY id"))]
    finally:
        engine.dispose()


def run_benchmark(executor: Any, url: str) -> int:
    with open_store(url) as store:
        b = bench.open_benchmark(SPEC, store)
        planned = len(b.todo)
    return sum(1 for _ in bench.run(b, executor, url)) if planned else 0


def test_two_node_cluster_matches_serial(postgres_server: Any) -> None:
    ray = pytest.importorskip("ray", reason="needs the ray extra: pip install 'steplab[ray]'")
    from ray.cluster_utils import Cluster

    serial_url, cluster_url = postgres_server.new_database(), postgres_server.new_database()
    assert run_benchmark(SerialExecutor(), serial_url) == 8

    # the lean processes a cluster node needs: no dashboard, autoscaler monitor or log monitor
    lean = {"num_cpus": 1, "include_dashboard": False, "include_log_monitor": False}
    t0 = time.monotonic()
    cluster = Cluster(initialize_head=True, head_node_args={**lean, "no_monitor": True})
    try:
        cluster.add_node(**lean)
        cluster.wait_for_nodes()
        with RayExecutor(address=cluster.address) as executor:
            assert executor.workers == 2  # the cluster's CPUs: one per node
            assert run_benchmark(executor, cluster_url) == 8
            actors = executor.placements()
        assert not ray.is_initialized()  # close() disconnected from the cluster
    finally:
        cluster.shutdown()
    assert time.monotonic() - t0 < HANG_S

    # one actor per node, and each node ran some of the trials
    node_of_pid = {a["pid"]: a["node"] for a in actors}
    assert len(set(node_of_pid.values())) == 2, actors
    ran_on = [node_of_pid[int(w.split(":")[1])] for w in workers(cluster_url)]
    assert len(ran_on) == 8 and set(ran_on) == set(node_of_pid.values()), ran_on

    serial, clustered = stored(serial_url), stored(cluster_url)
    assert len(serial) == 8
    assert clustered == serial
