"""Public tests of logistic.py (students run these locally)."""
import numpy as np

from grader.kit import assert_close, describe_input, fail

# A small example, worked out by hand: z = X @ w = [-1.5, 1, 1, -1.25], so the margins y * z are
# [-1.5, -1, 1, 1.25] and the loss is (log(1 + e^1.5) + log(1 + e) + log(1 + e^-1) + log(1 + e^-1.25)) / 4.
W = np.array([0.5, -1.0, 0.25])
X = np.array([[1.0, 2.0, 0.0], [3.0, 0.0, -2.0], [0.0, 0.0, 4.0], [-1.0, 1.0, 1.0]])
Y = np.array([1.0, -1.0, 1.0, -1.0])
LOSS = 0.8949664335911428
DW = np.array([0.28822528021776556, -0.3531122033904946, -0.5787956759786703])


def loss_and_gradient(logistic, w, X, y):
    """(loss, dw) from the student's logistic_loss, or a failure saying what came back instead."""
    out = logistic.call("logistic_loss", w, X, y)
    if not (isinstance(out, list) and len(out) == 2):
        fail(f"logistic_loss returned {type(out).__name__}; expected a tuple (loss, dw)")
    return out


def test_loss_and_gradient_on_a_small_example(logistic):
    """logistic_loss: the mean loss and its gradient on a small example"""
    loss, dw = loss_and_gradient(logistic, W, X, Y)
    given = describe_input("X", X)
    assert_close(loss, LOSS, "the loss of logistic_loss", given,
                 "the mean over the N examples of log(1 + exp(-y * z)), with z = X @ w")
    assert_close(dw, DW, "the dw of logistic_loss", given,
                 "the gradient of the mean loss with respect to w (divide by N); mind the sign")
