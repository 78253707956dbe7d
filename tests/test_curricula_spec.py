"""Curriculum specs and the registry (steplab.curricula.spec / registry): parsing, defaults,
canonical keys, round trips, one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from steplab import curricula
from steplab.curricula import CURRICULA, CurriculumSpec, TaskPool, build, spec_from
from steplab.errors import SpecError, WorkloadError


def test_none_and_empty_mean_uniform():
    assert spec_from(None) == CurriculumSpec("uniform")
    assert spec_from(None).to_dict() == {"name": "uniform"}
    assert spec_from("uniform").key == "uniform"
    assert spec_from({"name": "uniform"}).key == "uniform"


def test_text_dict_and_json_forms_agree_and_drop_defaults():
    a = spec_from("easy-to-hard:pacing=root,start=0.2,end=0.5")
    b = spec_from({"name": "easy-to-hard", "end": 0.5, "pacing": "root"})
    c = spec_from('{"name": "easy-to-hard", "pacing": "root", "end": 0.5}')
    assert a == b == c
    assert a.to_dict() == {"name": "easy-to-hard", "end": 0.5, "pacing": "root"}  # start=0.2 is the default
    assert a.key == "easy-to-hard:end=0.5,pacing=root"


@pytest.mark.parametrize("name", list(CURRICULA))
def test_round_trips_through_json_and_text(name):
    entry = CURRICULA[name]
    spec = spec_from(name)
    for key, space in entry.tunable.items():
        (_, (low, high)), = space.items()
        spec = spec.with_options(**{key: (low + high) / 2})
    again = spec_from(json.loads(json.dumps(spec.to_dict())))
    assert again == spec
    assert spec_from(spec.key) == spec
    assert set(spec.resolved()) == set(entry.defaults)


def test_tunable_options_are_numeric_options_with_defaults_in_range():
    for entry in CURRICULA.values():
        for key, space in entry.tunable.items():
            assert key in entry.defaults and key not in entry.choices
            (kind, (low, high)), = space.items()
            assert kind in ("uniform", "log_uniform") and low < high


def test_integer_options_stay_integers():
    spec = spec_from("easy-to-hard:pacing=exp,step_len=100.0")
    assert spec.resolved()["step_len"] == 100 and isinstance(spec.resolved()["step_len"], int)
    with pytest.raises(SpecError, match="step_len must be an integer"):
        spec_from("easy-to-hard:step_len=2.5")


@pytest.mark.parametrize("bad, match", [
    ("nope", "unknown curriculum 'nope'"),
    ("easy-to-hard:speed=2", "has no option 'speed'; it takes"),
    ("easy-to-hard:pacing=cubic", "pacing must be one of linear, root, step, exp"),
    ("easy-to-hard:start=fast", "start must be a finite number"),
    ("easy-to-hard:start", "write options as key=value"),
    ({"pacing": "root"}, "needs a 'name'"),
    (3, "must be a name, a text or a table"),
    ("{oops", "not valid JSON"),
])
def test_bad_specs_raise_one_line(bad, match):
    with pytest.raises(SpecError, match=match) as e:
        spec_from(bad)
    assert "\n" not in str(e.value)


def test_build_checks_its_arguments_and_option_ranges():
    pool = TaskPool(np.arange(10.0))
    with pytest.raises(SpecError, match="batch_size must be a positive integer"):
        build("uniform", pool, 10, 0, 0)
    with pytest.raises(SpecError, match="budget_steps"):
        build("uniform", pool, True, 4, 0)
    with pytest.raises(SpecError, match="TaskPool"):
        build("uniform", np.arange(10.0), 10, 4, 0)
    with pytest.raises(SpecError, match=r"start must be in \(0.0, 1.0\]"):
        build("easy-to-hard:start=0", pool, 10, 4, 0)


def test_task_pool_validates_its_arrays():
    with pytest.raises(WorkloadError, match="non-empty 1-d"):
        TaskPool(np.zeros((2, 2)))
    with pytest.raises(WorkloadError, match="NaN"):
        TaskPool(np.array([0.0, np.nan]))
    with pytest.raises(WorkloadError, match="no example of task 1"):
        TaskPool(np.zeros(3), tasks=np.array([0, 2, 2]))
    with pytest.raises(WorkloadError, match=r"scaled to \[0, 1\]"):
        TaskPool(np.zeros(3), params=np.array([0.0, 0.5, 2.0]))
    with pytest.raises(WorkloadError, match=r"skill_graph must be \(2, 2\)"):
        TaskPool(np.zeros(3), tasks=np.array([0, 1, 1]), skill_graph=np.eye(3))
    assert TaskPool(np.zeros(3), params=np.array([0.0, 0.5, 1.0])).params.shape == (3, 1)


def test_names_and_infos_are_listed():
    assert curricula.curriculum_names()[0] == "uniform"
    assert curricula.curriculum_names() == list(CURRICULA)
    for entry in CURRICULA.values():
        assert entry.description and entry.citation


def test_quantile_bins_keep_ties_together_and_assign_held_out_examples():
    d = np.arange(1000.0)
    ids, edges = curricula.quantile_bins(d, 10)
    assert np.bincount(ids).tolist() == [100] * 10 and (np.diff(ids) >= 0).all()
    np.testing.assert_array_equal(curricula.assign_bins(d, edges), ids)
    assert curricula.assign_bins(np.array([-5.0, 1e9]), edges).tolist() == [0, 9]
    tied = np.array([0.0] * 60 + [1.0] * 30 + [2.0] * 10)
    ids, edges = curricula.quantile_bins(tied, 10)
    assert ids.max() == 2 and (ids == tied).all()  # empty bins dropped, one bin per level
    np.testing.assert_array_equal(curricula.assign_bins(tied, edges), ids)
    ids, _ = curricula.quantile_bins(np.ones(7), 4)
    assert (ids == 0).all()


def test_docstring_examples_hold():
    import doctest

    from steplab.curricula import pacing, skill_it, spec

    for module in (pacing, skill_it, spec):
        assert doctest.testmod(module).failed == 0
