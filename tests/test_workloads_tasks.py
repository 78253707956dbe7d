"""The task-structured workloads (issue 25): ``mnist1d-tasks``, ``modarith-skills``,
``teacher-student-noise`` and the ``TaskWorkload`` contract they share."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from steplab import workloads
from steplab.workloads import (
    mnist1d_data,
    mnist1d_tasks,
    modarith_tasks,
    task_workload_names,
    teacher_student,
    teacher_student_tasks,
)
from steplab.workloads.curriculum_data import TaskWorkload

pytestmark = pytest.mark.usefixtures("one_thread")
CPU = torch.device("cpu")
NAMES = ("mnist1d-tasks", "modarith-skills", "teacher-student-noise")


@pytest.fixture(scope="module", params=NAMES)
def wl(request: pytest.FixtureRequest) -> TaskWorkload:
    w = workloads.get(request.param, budget_steps=50)
    assert isinstance(w, TaskWorkload)
    return w


def test_registered_and_listed_as_task_workloads():
    assert set(NAMES) <= set(task_workload_names())
    assert "logreg" not in task_workload_names() and "mnist1d" not in task_workload_names()


def test_pool_is_valid_and_every_task_has_train_and_probe_examples(wl: TaskWorkload):
    data = wl.task_data(CPU)
    pool = wl.task_pool(CPU)
    n, k = len(data.y), len(data.task_names)
    assert pool.size == n == data.x.shape[0]
    assert pool.num_tasks == k
    assert set(np.unique(data.tasks)) == set(range(k))
    assert set(np.unique(data.probe_tasks)) == set(range(k))
    assert len(data.probe_tasks) == len(data.probe_y)
    assert np.all(np.isfinite(pool.difficulty))
    # a given score replaces the task parameter
    other = np.arange(n, dtype=float)
    np.testing.assert_array_equal(wl.task_pool(CPU, other).difficulty, other)
    assert wl.describe()["tasks"] == list(data.task_names)


def test_uniform_batches_are_the_uniform_samplers_draws(wl: TaskWorkload):
    data = wl.task_data(CPU)
    rng = np.random.default_rng(7)
    stream = wl.batches(7, CPU)
    for _ in range(3):
        idx = rng.integers(0, len(data.y), wl.batch_size)
        x, y = next(stream)
        torch.testing.assert_close(x, data.x[torch.as_tensor(idx)])
        torch.testing.assert_close(y, data.y[torch.as_tensor(idx)])


def test_loss_is_the_mean_of_the_example_losses_and_task_losses_average_the_probe(wl: TaskWorkload):
    model = wl.init_model(0)
    batch = next(wl.batches(0, CPU))
    per = wl.example_losses(model, batch)
    assert per.shape == (wl.batch_size,)
    torch.testing.assert_close(wl.loss(model, batch), per.mean())
    data = wl.task_data(CPU)
    with torch.no_grad():
        probe = wl.example_losses(model, (data.probe_x, data.probe_y)).numpy()
    by_hand = [probe[data.probe_tasks == t].mean() for t in range(len(data.task_names))]
    np.testing.assert_allclose(wl.task_losses(model, CPU), by_hand, rtol=1e-5)
    pool = wl.pool_losses(model, CPU)
    assert pool.shape == (len(data.y),) and np.all(pool >= 0)


def test_mnist1d_task_args_restate_the_generator_defaults():
    a = mnist1d_tasks.example_args(0.5, 1.0)  # noise x1, full shift: the package's defaults
    for key in ("corr_noise_scale", "iid_noise_scale", "shear_scale", "scale_coeff", "max_translation"):
        assert getattr(a, key) == pytest.approx(mnist1d_data.GENERATOR_ARGS[key])
    easy = mnist1d_tasks.example_args(0.0, 0.0)
    assert easy.corr_noise_scale == easy.iid_noise_scale == easy.shear_scale == easy.scale_coeff == 0.0
    assert easy.max_translation == 1  # np.random.choice(1): no roll
    hard = mnist1d_tasks.example_args(1.0, 1.0)
    assert hard.corr_noise_scale == pytest.approx(0.5) and hard.max_translation == 48


def test_mnist1d_tasks_difficulty_is_the_mean_parameter_and_rng_is_kept():
    np.testing.assert_array_equal(mnist1d_tasks.task_of(np.array([[0.0, 0.2], [0.3, 0.3], [0.6, 0.5], [1.0, 1.0]])),
                                  [0, 1, 2, 3])
    data = mnist1d_tasks.MNIST1DTasks().task_data(CPU)
    np.testing.assert_allclose(data.difficulty, data.params.mean(1))
    assert data.params.min() >= 0 and data.params.max() <= 1
    # one fixed normalisation: the training set is near mean 0 / std 1, not exactly (it is not its own)
    assert abs(float(data.x.mean())) < 0.2 and 0.7 < float(data.x.std()) < 1.4
    assert float(data.x.mean()) != pytest.approx(0.0, abs=1e-6)
    # the generator draws from the global RNGs; build_arrays leaves the caller's streams as they were
    random.seed(3)
    np.random.seed(3)
    before = (random.getstate(), np.random.get_state()[1].copy())
    fresh = mnist1d_tasks.build_arrays()
    assert random.getstate() == before[0]
    np.testing.assert_array_equal(np.random.get_state()[1], before[1])
    cached = mnist1d_tasks.cached_arrays()  # the disk cache holds the same set
    assert sorted(cached) == sorted(fresh)
    for key in fresh:
        np.testing.assert_array_equal(cached[key], fresh[key])


def test_modarith_skills_answers_by_hand():
    p = modarith_tasks.P
    a, b = np.array([3, 30]), np.array([5, 2])
    np.testing.assert_array_equal(modarith_tasks.answers(a, b, 0), [8 % p, 32 % p])
    np.testing.assert_array_equal(modarith_tasks.answers(a, b, 1), [(3 - 5) % p, 28 % p])
    np.testing.assert_array_equal(modarith_tasks.answers(a, b, 2), [15 % p, 60 % p])
    np.testing.assert_array_equal(modarith_tasks.answers(a, b, 3), [34 % p, 904 % p])
    data = modarith_tasks.ModArithSkills().task_data(CPU)
    x, y = data.x.numpy(), data.y.numpy()
    for op in range(len(modarith_tasks.OPS)):
        rows = x[:, 2] == p + op
        np.testing.assert_array_equal(y[rows], modarith_tasks.answers(x[rows, 0], x[rows, 1], op))
        assert (data.tasks[rows] == op).all()
    # train, probe and validation pairs never overlap within an operation
    s = modarith_tasks.build_splits()
    seen = [set(map(tuple, s[k][:, [0, 1, 4]].tolist())) for k in ("train", "probe", "validation")]
    assert not (seen[0] & seen[1]) and not (seen[0] & seen[2]) and not (seen[1] & seen[2])


def test_teacher_student_noise_grades_by_task():
    data = teacher_student_tasks.TeacherStudentNoise().task_data(CPU)
    x_base = teacher_student._data(CPU)[0]
    torch.testing.assert_close(data.x, x_base)  # the base workload's inputs
    gen = torch.Generator().manual_seed(teacher_student.DATA_SEED)
    u, _ = torch.linalg.qr(torch.randn(teacher_student.DIM, teacher_student.N_DIRECTIONS, generator=gen))
    target = ((data.x @ u) ** 2 - 1).sum(1) / 2  # (He2(u1.x) + He2(u2.x)) / 2
    resid = (data.y - target).numpy()
    for k, g in enumerate(teacher_student_tasks.GRADES):
        r = resid[data.tasks == k]
        assert abs(len(r) - len(resid) / 4) <= 1
        assert r.std() == pytest.approx(g, abs=0.08 + 0.08 * g)  # 512 draws: the std within ~8%
        np.testing.assert_allclose(data.difficulty[data.tasks == k], g)
