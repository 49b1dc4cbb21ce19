"""Private tests (not shipped to students) of logistic.py: large margins, random sizes and a training run
against the grader's own math."""
import numpy as np
import pytest

from grader.kit import as_array, assert_close, describe_input, fail, tolerance

STEP = 1e-6             # of the central finite differences
DESCENT_STEPS = 25
DESCENT_RATE = 1.0


def loss_and_gradient(logistic, w, X, y):
    """(loss, dw) from the student's logistic_loss, or a failure saying what came back instead."""
    out = logistic.call("logistic_loss", w, X, y)
    if not (isinstance(out, list) and len(out) == 2):
        fail(f"logistic_loss returned {type(out).__name__}; expected a tuple (loss, dw)")
    return out


def reference_loss(w, X, y):
    """The grader's own mean loss (np.logaddexp: finite for any margin)."""
    return float(np.mean(np.logaddexp(0.0, -y * (X @ w))))


def reference_gradient(w, X, y):
    """The grader's own gradient of reference_loss with respect to w."""
    return X.T @ (-y * np.exp(-np.logaddexp(0.0, y * (X @ w)))) / len(y)


def test_large_margins_stay_finite(logistic):
    """logistic_loss stays finite and right for scores of +-1e4"""
    w = np.array([1e4, -5e3])
    X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0], [0.5, 1.0]])     # z = 1e4, -5e3, 5e3, -1e4, 0
    y = np.array([-1.0, -1.0, 1.0, 1.0, 1.0])                                         # margins -1e4 ... 5e3
    loss, dw = loss_and_gradient(logistic, w, X, y)
    given = f"{describe_input('X', X)} and scores X @ w up to 1e4 in size"
    assert_close(loss, reference_loss(w, X, y), "the loss of logistic_loss", given,
                 "exp(1e4) overflows to inf: compute log(1 + exp(t)) as np.logaddexp(0, t)")
    assert_close(dw, reference_gradient(w, X, y), "the dw of logistic_loss", given,
                 "1 / (1 + exp(t)) is exp(-np.logaddexp(0, t)), finite for any t")


@pytest.mark.parametrize("sizes", [(5, 3), (12, 6)], ids=lambda s: "x".join(map(str, s)))
def test_gradient_matches_finite_differences(logistic, config, sizes):
    """logistic_loss: the loss, and dw against a finite-difference gradient, on integer labels"""
    n, d = sizes
    rng = np.random.default_rng(n)
    X, w = rng.normal(0, 1, (n, d)), rng.normal(0, 1, d)
    y = rng.choice(np.array([-1, 1]), n)
    loss, dw = loss_and_gradient(logistic, w, X, y)
    given = f"{describe_input('X', X)} and {describe_input('y', y)}"
    assert_close(loss, reference_loss(w, X, y), "the loss of logistic_loss", given,
                 "the mean over the N examples of log(1 + exp(-y * z))")
    numeric = np.array([(reference_loss(w + STEP * e, X, y) - reference_loss(w - STEP * e, X, y)) / (2 * STEP)
                        for e in np.eye(d)])
    assert_close(dw, numeric, "the dw of logistic_loss", given,
                 "the derivative of the mean loss with respect to each weight", **tolerance(config, "finite_differences"))


def test_gradient_descent_separates_two_clusters(logistic, feedback):
    """Gradient descent with logistic_loss's dw separates two clusters"""
    rng = np.random.default_rng(7)
    n = 40
    y = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    X = np.column_stack([rng.normal(0, 1, (n, 2)) + 1.5 * y[:, None], np.ones(n)])     # a column of ones: a bias
    w = np.zeros(3)
    for _ in range(DESCENT_STEPS):
        _, dw = loss_and_gradient(logistic, w, X, y)
        w = w - DESCENT_RATE * as_array(dw, "the dw of logistic_loss", shape=w.shape)
    feedback.accuracy("logistic", np.where(X @ w >= 0, 1.0, -1.0), y, "w after gradient descent with your dw",
                      f"{DESCENT_STEPS} steps of w -= {DESCENT_RATE:g} * dw from w = 0, on {n} examples")
