"""Tests for ``steplab.workloads.stream_metrics``: every metric against hand-made accuracy tables
and curves a_i(t), values computed by hand in the comments."""

from __future__ import annotations

import math

import numpy as np
import pytest

from steplab.workloads import stream_metrics as cm

# R[j, i]: row 0 before training (b_i), row j after task j. Task 1 improves after it was
# learned (0.7 -> 0.9) and then falls to 0.6, so Chaudhry's forgetting (from the best, 0.9)
# and the forgetting since learned (from 0.7) differ.
R = np.array([
    [0.1, 0.2, 0.3],
    [0.7, 0.4, 0.35],
    [0.9, 0.8, 0.5],
    [0.6, 0.7, 0.9],
])


def test_acc_bwt_fwt_on_a_hand_made_table():
    assert cm.average_accuracy(R) == pytest.approx((0.6 + 0.7 + 0.9) / 3)
    # ((0.6 - 0.7) + (0.7 - 0.8)) / 2
    assert cm.backward_transfer(R) == pytest.approx(-0.1)
    # ((R[1,2] - b_2) + (R[2,3] - b_3)) / 2 = ((0.4 - 0.2) + (0.5 - 0.3)) / 2
    assert cm.forward_transfer(R) == pytest.approx(0.2)


def test_chaudhry_forgetting_uses_the_best_earlier_value_not_the_just_learned_one():
    # task 1: max(0.7, 0.9) - 0.6 = 0.3; task 2: max(0.4, 0.8) - 0.7 = 0.1
    assert cm.forgetting(R) == pytest.approx(0.2)
    # task 1: 0.7 - 0.6 = 0.1; task 2: 0.8 - 0.7 = 0.1
    assert cm.forgetting_since_learned(R) == pytest.approx(0.1)
    assert cm.forgetting_since_learned(R) == pytest.approx(-cm.backward_transfer(R))


def test_one_task_has_no_transfer_or_forgetting_and_bad_shapes_raise():
    r1 = np.array([[0.1], [0.9]])
    assert cm.average_accuracy(r1) == pytest.approx(0.9)
    for f in (cm.backward_transfer, cm.forward_transfer, cm.forgetting, cm.forgetting_since_learned):
        assert math.isnan(f(r1))
    with pytest.raises(ValueError, match="T \\+ 1"):
        cm.average_accuracy(np.ones((3, 3)))


def _history() -> cm.History:
    """3 tasks of 4 updates (B = 4, 8, 12), evaluated every 2 updates.

    task 1 dips to 0.3 at t=6 while task 2 trains; task 2's value at its own end (t=8, 0.3)
    is *not* a min-ACC candidate (evaluations during task i are excluded), its later minimum
    is 0.4 at t=10. Values at t=0 are b_i; task 3 is also evaluated at t=4 and 8 (unseen)."""
    h = cm.History([4, 8, 12])
    h.add(0, {0: 0.1, 1: 0.2, 2: 0.3})
    h.add(2, {0: 0.8})
    h.add(4, {0: 0.9, 1: 0.25, 2: 0.3})
    h.add(6, {0: 0.3, 1: 0.6})
    h.add(8, {0: 0.7, 1: 0.3, 2: 0.35})
    h.add(10, {0: 0.5, 1: 0.4, 2: 0.7})
    h.add(12, {0: 0.6, 1: 0.8, 2: 0.9})
    return h


def test_accuracy_matrix_from_the_curves():
    r = cm.accuracy_matrix(_history())
    np.testing.assert_allclose(r, [[0.1, 0.2, 0.3], [0.9, 0.25, 0.3], [0.7, 0.3, 0.35], [0.6, 0.8, 0.9]])


def test_min_acc_and_wc_acc_by_hand():
    h = _history()
    # end of the stream (k = 3): task 1 min over t > 4 of {0.3, 0.7, 0.5, 0.6} = 0.3,
    # task 2 min over t > 8 of {0.4, 0.8} = 0.4 (not 0.3 at t = 8, its own last update)
    assert cm.min_accuracy(h) == pytest.approx(0.35)
    # WC-ACC = a_3(12) / 3 + (2/3) min-ACC = 0.3 + 0.7/3
    assert cm.worst_case_accuracy(h) == pytest.approx(0.9 / 3 + 2 / 3 * 0.35)
    # at t = 8 (task 2 trains): min-ACC = task 1's min over 4 < t <= 8 = 0.3; WC = (0.3 + 0.3)/2
    assert cm.min_accuracy(h, at=8) == pytest.approx(0.3)
    assert cm.worst_case_accuracy(h, at=8) == pytest.approx(0.5 * 0.3 + 0.5 * 0.3)
    # while task 1 trains there is no earlier task: min-ACC NaN, WC-ACC = a_1(t)
    assert math.isnan(cm.min_accuracy(h, at=2))
    assert cm.worst_case_accuracy(h, at=2) == pytest.approx(0.8)


def test_windowed_forgetting_and_plasticity_depend_on_the_window():
    s = [1.0, 0.9, 0.8, 0.7, 0.6, 0.7, 1.0]
    assert cm.windowed_forgetting(s, 2) == pytest.approx(0.1)  # adjacent pairs only
    assert cm.windowed_forgetting(s, 3) == pytest.approx(0.2)
    assert cm.windowed_forgetting(s, 5) == pytest.approx(0.4)  # 1.0 -> 0.6 spans 5 evaluations
    assert cm.windowed_forgetting(s, 100) == pytest.approx(0.4)
    assert cm.windowed_plasticity(s, 2) == pytest.approx(0.3)  # 0.7 -> 1.0
    assert cm.windowed_plasticity(s, 3) == pytest.approx(0.4)  # 0.6 -> 1.0
    assert cm.windowed_forgetting([0.1, 0.2, 0.3], 10) == 0.0  # only rises: 0, never negative
    assert cm.windowed_plasticity([0.3, 0.2, 0.1], 10) == 0.0
    assert cm.windowed_forgetting(s, 1) == 0.0  # a window of one evaluation has no pair


def test_a_dip_inside_a_window_is_seen_only_with_dense_evaluation():
    dense = [0.9] * 20
    dense[7] = 0.4  # one evaluation deep in a dip, back at the next
    assert cm.windowed_forgetting(dense, 10) == pytest.approx(0.5)
    assert cm.windowed_plasticity(dense, 10) == pytest.approx(0.5)
    sparse = dense[::3]  # evaluating every 3rd step misses it
    assert 0.4 not in sparse and cm.windowed_forgetting(sparse, 10) == 0.0


def test_summary_windowed_metrics_use_seen_evaluations_only():
    h = _history()
    out = cm.summarize(h)
    # task 1 seen series (t > 0): 0.8 0.9 0.3 0.7 0.5 0.6 -> WF10 = 0.9 - 0.3 = 0.6
    # task 2 (t > 4): 0.6 0.3 0.4 0.8 -> 0.3 ; task 3 (t > 8): 0.7 0.9 -> 0 (the unseen 0.35 at t=8 excluded)
    assert out["continual/wf10"] == pytest.approx((0.6 + 0.3 + 0.0) / 3)
    # rises: task 1 0.3 -> 0.7 = 0.4 ... 0.8 -> 0.9 = 0.1; max over windows = 0.4; task 2 0.3 -> 0.8 = 0.5; task 3 0.2
    assert out["continual/wp10"] == pytest.approx((0.4 + 0.5 + 0.2) / 3)
    assert out["continual/acc"] == pytest.approx((0.6 + 0.8 + 0.9) / 3)
    assert out["continual/min_acc"] == pytest.approx(0.35)


def test_stability_gaps_height_and_half_recovery_time():
    h = cm.History([4, 10])
    h.add(4, {0: 0.9, 1: 0.1})
    h.add(6, {0: 0.5, 1: 0.6})
    h.add(8, {0: 0.75, 1: 0.8})
    h.add(10, {0: 0.8, 1: 0.9})
    (gap,) = cm.stability_gaps(h)
    # height 0.9 - 0.5 = 0.4; back above 0.9 - 0.2 = 0.7 at t = 8, 4 updates after the switch
    assert (gap.stage, gap.task, gap.switch) == (1, 0, 4)
    assert gap.height == pytest.approx(0.4)
    assert gap.steps == 4 and gap.recovered

    lasting = cm.History([4, 10])
    lasting.add(4, {0: 0.9})
    lasting.add(6, {0: 0.3})
    lasting.add(8, {0: 0.3})
    lasting.add(10, {0: 0.4})
    (gap,) = cm.stability_gaps(lasting)
    # height 0.6, never back above 0.6: censored at the stage end, 6 updates
    assert gap.height == pytest.approx(0.6) and gap.steps == 6 and not gap.recovered

    flat = cm.History([4, 10])
    flat.add(4, {0: 0.9})
    flat.add(10, {0: 0.95})
    assert cm.stability_gaps(flat)[0].height == 0.0
    s = cm.summarize(flat)
    assert s["continual/gap_height"] == 0.0 and math.isnan(s["continual/gap_steps"])


def test_stage_of_and_seen():
    h = _history()
    assert [h.stage_of(t) for t in (0, 1, 4, 5, 8, 9, 12)] == [-1, 0, 0, 1, 1, 2, 2]
    steps, values = h.seen(1)
    assert steps.tolist() == [6, 8, 10, 12] and values.tolist() == [0.6, 0.3, 0.4, 0.8]


def test_docstring_examples():
    import doctest

    from steplab.schedules import stages as continual_schedules

    for module in (cm, continual_schedules):
        assert doctest.testmod(module).failed == 0
