"""Public tests of numpy_ann.py (students run these locally)."""
import numpy as np
import pytest

from grader.kit import as_array, assert_close, describe_input, fail


def fixture_model(numpy_ann):
    return numpy_ann.new("NumpyANN", 5, 4, 3, 0.1)


@pytest.mark.parametrize("sizes", [(784, 128, 10), (5, 4, 3), (7, 2, 6)], ids=["784-128-10", "5-4-3", "7-2-6"])
def test_parameter_shapes(numpy_ann, sizes):
    """NumpyANN: shapes of parameters, outputs and cached activations"""
    n_in, n_hidden, n_out = sizes
    ann = numpy_ann.new("NumpyANN", n_in, n_hidden, n_out, 0.05)
    for name, shape in (("W1", (n_in, n_hidden)), ("b1", (1, n_hidden)), ("W2", (n_hidden, n_out)),
                        ("b2", (1, n_out))):
        as_array(ann.get(name), f"NumpyANN({n_in}, {n_hidden}, {n_out}, 0.05).{name}", shape=shape)
    for name, value in (("input_size", n_in), ("hidden_size", n_hidden), ("output_size", n_out), ("lr", 0.05)):
        if ann.get(name) != value:
            fail(f"NumpyANN.{name} is {ann.get(name)!r}; expected {value!r}")
    X = np.random.default_rng(0).random((3, n_in))
    as_array(ann.call("_forward", X), f"_forward on {describe_input('X', X)}", shape=(3, n_out))
    for name, shape in (("z1", (3, n_hidden)), ("a1", (3, n_hidden)), ("z2", (3, n_out)), ("a2", (3, n_out))):
        as_array(ann.get(name), f"self.{name} after _forward on {describe_input('X', X)}", shape=shape)


def test_relu(numpy_ann, expected):
    """NumpyANN._relu on negatives, zeros and positives"""
    ann = fixture_model(numpy_ann)
    assert_close(ann.call("_relu", expected["relu_in"]), expected["relu_out"], "_relu",
                 describe_input("z", expected["relu_in"]), "ReLU is max(z, 0), element-wise")


def test_relu_grad(numpy_ann, expected):
    """NumpyANN._relu_grad is 0 where z <= 0 (including exactly 0) and 1 elsewhere"""
    ann = fixture_model(numpy_ann)
    assert_close(ann.call("_relu_grad", expected["relu_in"]), expected["relu_grad_out"], "_relu_grad",
                 describe_input("z", expected["relu_in"]), "the gradient at exactly 0 is 0 in this assignment")


def test_softmax(numpy_ann, expected):
    """NumpyANN._softmax matches the expected probabilities; rows sum to 1"""
    ann = fixture_model(numpy_ann)
    out = assert_close(ann.call("_softmax", expected["softmax_in"]), expected["softmax_out"], "_softmax",
                       describe_input("z", expected["softmax_in"]), "softmax is taken over each row (axis=1)")
    assert_close(out.sum(axis=1), np.ones(out.shape[0]), "the row sums of _softmax")


def test_cross_entropy(numpy_ann, expected):
    """NumpyANN._cross_entropy is the mean over samples"""
    ann = fixture_model(numpy_ann)
    assert_close(ann.call("_cross_entropy", expected["softmax_out"], expected["ce_true"]), expected["ce_out"],
                 "_cross_entropy", describe_input("y_pred", expected["softmax_out"]),
                 "average -sum(y_true * log(y_pred)) over the N rows (prediction first, then labels)")


def test_forward_output_and_cache(numpy_ann, expected):
    """NumpyANN._forward returns a2 and stores z1, a1, z2, a2"""
    ann = fixture_model(numpy_ann)
    X = expected["fwd_X"]
    given = describe_input("X", X)
    assert_close(ann.call("_forward", X), expected["fwd_a2"], "_forward", given)
    for name in ("z1", "a1", "z2"):
        assert_close(ann.get(name), expected[f"fwd_{name}"], f"self.{name} after _forward", given)
    assert_close(ann.get("a2"), expected["fwd_a2"], "self.a2 after _forward", given)


def test_backward_updates(numpy_ann, expected):
    """NumpyANN._backward: one SGD step on the batch-averaged gradients"""
    ann = fixture_model(numpy_ann)
    X, y = expected["fwd_X"], expected["bwd_y"]
    ann.call("_forward", X)
    ann.call("_backward", X, y)
    for name in ("W1", "b1", "W2", "b2"):
        assert_close(ann.get(name), expected[f"bwd_{name}"], f"{name} after _forward + _backward",
                     describe_input("X", X), "average the gradients over the batch (divide by N) and "
                     "compute every gradient before changing any parameter")


@pytest.mark.calls_train
def test_train_uses_every_row_in_batches(numpy_ann):
    """NumpyANN.train: one _backward per mini-batch, last batch partial"""
    ann = numpy_ann.new("NumpyANN", 5, 4, 3, 0.1)
    rng = np.random.default_rng(1)
    X, y = rng.random((10, 5)), np.eye(3)[rng.integers(0, 3, 10)]
    ann.spy("_backward")
    ann.call("train", X, y, X, y, epochs=2, batch_size=4)
    rows = sorted(call[0][0] for call in ann.spy_log("_backward") if call and call[0])
    if rows != [2, 2, 4, 4, 4, 4]:
        fail(f"train(10 rows, epochs=2, batch_size=4) called _backward with batches of {rows} rows; "
             "expected 4, 4, 2 in each epoch (keep the last, smaller batch)")


def test_predict_returns_probabilities_without_changing_weights(numpy_ann, expected):
    """NumpyANN.predict returns probabilities and leaves the weights alone"""
    ann = fixture_model(numpy_ann)
    before = as_array(ann.get("W1"), "W1")
    probs = assert_close(ann.call("predict", expected["fwd_X"]), expected["fwd_a2"], "predict",
                         describe_input("X", expected["fwd_X"]), "predict returns class probabilities (N, C)")
    assert_close(ann.get("W1"), before, "W1 after predict", hint="predict must not train")
    assert probs.shape == (6, 3)


def test_accuracy(numpy_ann, expected):
    """NumpyANN.accuracy takes one-hot labels and returns a fraction"""
    ann = fixture_model(numpy_ann)
    X = expected["fwd_X"]
    labels = expected["fwd_a2"].argmax(axis=1)
    y = np.eye(3)[labels]
    y_half = y.copy()
    y_half[:3] = np.eye(3)[(labels[:3] + 1) % 3]
    assert_close(ann.call("accuracy", X, y), 1.0, "accuracy", "one-hot labels that all match")
    assert_close(ann.call("accuracy", X, y_half), 0.5, "accuracy", "one-hot labels of which half match")
