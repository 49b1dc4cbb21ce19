"""Binary logistic regression in plain numpy: the loss and its gradient.

Inputs everywhere in this file:
  w  float64 array (D,), the weights of a linear classifier (no bias: add a column of ones to X for one)
  X  float64 array (N, D), one example a row
  y  array (N,) of labels, each -1 or +1 (any numeric dtype)
No function changes the arrays it is given.

Run ``python -m doctest logistic.py`` to run the example below.
"""
import numpy as np


def logistic_loss(w, X, y):
    """
    Mean logistic loss of a linear classifier and its gradient with respect to the weights.

    The scores are z = X @ w, shape (N,); the loss is the mean over the N examples of
    log(1 + exp(-y_i * z_i)).  It must be finite for every |z_i| up to 1e4: exp(1e4) overflows to inf in
    float64, so never compute exp of a large number; np.logaddexp(0, t) is log(1 + exp(t)) without overflow.

    Inputs:
    - w: A numpy array of shape (D,), float64: the weights.
    - X: A numpy array of shape (N, D), float64: N examples of dimension D.
    - y: A numpy array of shape (N,): the labels, each -1 or +1.

    Returns a tuple of:
    - loss: the mean loss, a float.
    - dw: the gradient of the loss with respect to the weights w, a float64 array of shape (D,).

    >>> loss, dw = logistic_loss(np.zeros(2), np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([1, -1]))
    >>> round(loss, 6), dw
    (0.693147, array([0.5, 0.5]))
    """
    loss, dw = 0.0, np.zeros(np.shape(w))
    # BEGIN SOLUTION
    margins = y * (X @ w)
    loss = float(np.mean(np.logaddexp(0.0, -margins)))
    # d/dz_i log(1 + exp(-y_i z_i)) = -y_i / (1 + exp(y_i z_i)), and 1 / (1 + exp(t)) = exp(-logaddexp(0, t))
    dz = -y * np.exp(-np.logaddexp(0.0, margins)) / X.shape[0]
    dw = X.T @ dz
    # END SOLUTION
    return loss, dw
