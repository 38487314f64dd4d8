"""emotag.metrics: hand-checkable cases, then a cross-check against scikit-learn on random data."""

from __future__ import annotations

import numpy as np
import pytest

from emotag import metrics


def test_hand_checked_case():
    # 3 classes; truth and predictions chosen so every figure can be worked out on paper.
    y_true = [0, 0, 0, 1, 1, 2]
    y_pred = [0, 0, 1, 1, 2, 2]
    cm = metrics.confusion_matrix(y_true, y_pred, 3)
    assert cm.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert metrics.accuracy(y_true, y_pred) == pytest.approx(4 / 6)
    # recalls 2/3, 1/2, 1/1
    assert metrics.unweighted_accuracy(y_true, y_pred, 3) == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    # precisions 1, 1/2, 1/2 -> F1 = 0.8, 0.5, 2/3
    f1 = [0.8, 0.5, 2 / 3]
    assert metrics.macro_f1(y_true, y_pred, 3) == pytest.approx(sum(f1) / 3)
    assert metrics.weighted_f1(y_true, y_pred, 3) == pytest.approx((3 * 0.8 + 2 * 0.5 + 1 * 2 / 3) / 6)


def test_absent_classes_do_not_count():
    # class 2 never occurs in truth or predictions: left out of UA and macro-F1
    assert metrics.unweighted_accuracy([0, 1], [0, 1], 3) == 1.0
    assert metrics.macro_f1([0, 1], [0, 1], 3) == 1.0
    # class 1 predicted but never true: F1 0 counts in macro-F1, not in UA
    assert metrics.macro_f1([0, 0], [0, 1], 2) == pytest.approx((2 / 3 + 0) / 2)
    assert metrics.unweighted_accuracy([0, 0], [0, 1], 2) == pytest.approx(0.5)


def test_ece_hand_checked():
    # two rows at confidence 0.9 (one right), two at 0.6 (both right)
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.4, 0.6]])
    y = [0, 1, 0, 1]
    expected = 0.5 * abs(0.5 - 0.9) + 0.5 * abs(1.0 - 0.6)
    assert metrics.expected_calibration_error(probs, y) == pytest.approx(expected)
    perfect = np.eye(3)[[0, 1, 2]]
    assert metrics.expected_calibration_error(perfect, [0, 1, 2]) == 0.0


def test_errors_and_empty():
    with pytest.raises(ValueError):
        metrics.accuracy([0, 1], [0])
    with pytest.raises(ValueError):
        metrics.confusion_matrix([0, 3], [0, 1], 3)
    assert metrics.accuracy([], []) == 0.0
    assert metrics.expected_calibration_error(np.zeros((0, 3)), []) == 0.0


@pytest.mark.parametrize("seed", range(5))
def test_against_scikit_learn(seed):
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(seed)
    k = 7
    y_true = rng.integers(0, k, 300)
    y_pred = np.where(rng.random(300) < 0.5, y_true, rng.integers(0, k - 2, 300))
    labels = list(range(k))
    assert (
        metrics.confusion_matrix(y_true, y_pred, k).tolist()
        == sk.confusion_matrix(y_true, y_pred, labels=labels).tolist()
    )
    assert metrics.accuracy(y_true, y_pred) == pytest.approx(sk.accuracy_score(y_true, y_pred))
    assert metrics.unweighted_accuracy(y_true, y_pred, k) == pytest.approx(
        sk.balanced_accuracy_score(y_true, y_pred)
    )
    assert metrics.macro_f1(y_true, y_pred, k) == pytest.approx(sk.f1_score(y_true, y_pred, average="macro"))
    assert metrics.weighted_f1(y_true, y_pred, k) == pytest.approx(
        sk.f1_score(y_true, y_pred, average="weighted")
    )


def test_ece_against_independent_binning():
    # an independent loop-based ECE (Guo et al.: bins (i/15, (i+1)/15])
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 2, (500, 7))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = rng.integers(0, 7, 500)
    conf, pred = probs.max(1), probs.argmax(1)
    total = 0.0
    for i in range(15):
        lo, hi = i / 15, (i + 1) / 15
        m = (conf > lo) & (conf <= hi)
        if m.any():
            total += m.mean() * abs((pred[m] == y[m]).mean() - conf[m].mean())
    assert metrics.expected_calibration_error(probs, y) == pytest.approx(total)


def test_ece_floor_is_the_ece_of_a_calibrated_model_at_that_size():
    rng = np.random.default_rng(4)
    logits = rng.normal(0, 2, (240, 7))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    # the same quantity by brute force: labels drawn from the probabilities, ECE of each draw, averaged
    brute = np.mean(
        [
            metrics.expected_calibration_error(probs, [rng.choice(7, p=row) for row in probs])
            for _ in range(300)
        ]
    )
    floor = metrics.ece_floor(probs)
    assert floor == pytest.approx(brute, abs=0.006)
    assert 0.03 < floor < 0.12  # 240 rows: far from 0, though the model is calibrated by construction
    big = np.repeat(probs, 40, axis=0)
    assert metrics.ece_floor(big) < floor / 3  # the floor falls with n (about as 1/sqrt(n))
    assert metrics.ece_floor(probs) == floor  # seeded
    assert metrics.ece_floor(np.zeros((0, 7))) == 0.0
    # an over-confident model sits well above its floor
    sharp = np.exp(2 * logits) / np.exp(2 * logits).sum(1, keepdims=True)
    y = np.array([rng.choice(7, p=row) for row in probs])
    assert metrics.expected_calibration_error(sharp, y) > 2 * metrics.ece_floor(sharp)
