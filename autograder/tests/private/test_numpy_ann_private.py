"""Private tests (not shipped to students) of numpy_ann.py: random sizes against the grader's own math."""
import numpy as np
import pytest

from grader.kit import GradeFailure, as_array, assert_close, describe_input, fail, flat_images, ref, targets, tolerance

SIZES = [(3, 5, 2, 4), (8, 6, 4, 7), (20, 16, 10, 9)]   # (input, hidden, output, N)
PARAMS = ("W1", "b1", "W2", "b2")


def params_of(ann):
    return {n: as_array(ann.get(n), f"self.{n}") for n in PARAMS}


@pytest.mark.parametrize("dtype", ["int64", "float32", "float64"])
def test_relu_and_grad_on_dtypes(numpy_ann, dtype):
    """NumpyANN._relu and _relu_grad on int, float32 and float64 input, including exactly 0"""
    ann = numpy_ann.new("NumpyANN", 2, 2, 2, 0.1)
    z = np.array([[-3, -1, 0, 0, 2, 5]], dtype=dtype)
    assert_close(ann.call("_relu", z), ref.relu(z), "_relu", describe_input("z", z))
    assert_close(ann.call("_relu_grad", z), ref.relu_grad(z), "_relu_grad", describe_input("z", z),
                 "0 where z <= 0, 1 elsewhere")


def test_softmax_is_stable_for_large_logits(numpy_ann):
    """NumpyANN._softmax stays finite for logits of +-1000"""
    ann = numpy_ann.new("NumpyANN", 2, 2, 3, 0.1)
    z = np.array([[1000.0, 999.0, -1000.0], [-1000.0, -1000.0, -999.0]])
    assert_close(ann.call("_softmax", z), ref.softmax(z), "_softmax", describe_input("z", z),
                 "subtract each row's maximum before exp")


@pytest.mark.parametrize("sizes", SIZES, ids=lambda s: "-".join(map(str, s)))
def test_softmax_and_cross_entropy_random(numpy_ann, sizes):
    """NumpyANN._softmax and _cross_entropy on random inputs"""
    _, _, n_out, n = sizes
    rng = np.random.default_rng(n)
    ann = numpy_ann.new("NumpyANN", 2, 2, n_out, 0.1)
    z = rng.normal(0, 4, (n, n_out))
    p = ref.softmax(z)
    y = np.eye(n_out)[rng.integers(0, n_out, n)]
    assert_close(ann.call("_softmax", z), p, "_softmax", describe_input("z", z))
    assert_close(ann.call("_cross_entropy", p, y), ref.cross_entropy(p, y), "_cross_entropy",
                 describe_input("y_pred", p), "the mean over the N rows of -sum(y_true * log(y_pred))")


@pytest.mark.parametrize("sizes", SIZES, ids=lambda s: "-".join(map(str, s)))
def test_forward_random(numpy_ann, sizes):
    """NumpyANN._forward output and caches for random sizes; training=False keeps the caches"""
    n_in, n_hidden, n_out, n = sizes
    rng = np.random.default_rng(n_in)
    ann = numpy_ann.new("NumpyANN", n_in, n_hidden, n_out, 0.1, random_seed=n)
    ann.set("b1", rng.normal(0, 0.1, (1, n_hidden)))   # non-zero biases, as after training
    ann.set("b2", rng.normal(0, 0.1, (1, n_out)))
    X = rng.random((n, n_in))
    params = params_of(ann)
    z1, a1, z2, a2 = ref.ann_forward(params, X)
    assert_close(ann.call("_forward", X), a2, "_forward", describe_input("X", X))
    for name, value in (("z1", z1), ("a1", a1), ("z2", z2), ("a2", a2)):
        assert_close(ann.get(name), value, f"self.{name}", describe_input("X", X))
    X2 = rng.random((n + 1, n_in))
    assert_close(ann.call("_forward", X2, training=False), ref.ann_forward(params, X2)[3],
                 "_forward(training=False)", describe_input("X", X2))
    assert_close(ann.get("a1"), a1, "self.a1 after _forward(X2, training=False)", hint="only training=True may "
                 "store the activations")
    assert_close(ann.get("z2"), z2, "self.z2 after _forward(X2, training=False)", hint="only training=True may "
                 "store the activations")


@pytest.mark.parametrize("sizes", SIZES, ids=lambda s: "-".join(map(str, s)))
def test_backward_random(numpy_ann, sizes, config):
    """NumpyANN._backward on random sizes matches the batch-averaged SGD step"""
    n_in, n_hidden, n_out, n = sizes
    rng = np.random.default_rng(n_hidden)
    lr = 0.3
    ann = numpy_ann.new("NumpyANN", n_in, n_hidden, n_out, lr, random_seed=n_in)
    params = params_of(ann)
    X = rng.random((n, n_in))
    y = np.eye(n_out)[rng.integers(0, n_out, n)]
    grads = ref.ann_gradients(params, X, y)
    ann.call("_forward", X)
    ann.call("_backward", X, y)
    for name in PARAMS:
        assert_close(ann.get(name), params[name] - lr * grads[name], f"{name} after _forward + _backward",
                     describe_input("X", X), "gradients of the mean loss (divide by N); compute all gradients "
                     "before updating", **tolerance(config, "sgd_step"))


def test_backward_passes_finite_differences(numpy_ann, config):
    """NumpyANN._backward agrees with a finite-difference gradient"""
    rng = np.random.default_rng(5)
    ann = numpy_ann.new("NumpyANN", 4, 3, 3, 1.0, random_seed=3)
    ann.set("W1", rng.normal(0, 0.5, (4, 3)))
    ann.set("W2", rng.normal(0, 0.5, (3, 3)))
    params = params_of(ann)
    X = rng.random((5, 4))
    y = np.eye(3)[[0, 1, 2, 1, 0]]
    numeric = ref.numeric_gradients({k: v.copy() for k, v in params.items()}, X, y)
    ann.call("_forward", X)
    ann.call("_backward", X, y)
    for name in PARAMS:
        analytic = params[name] - as_array(ann.get(name), name)  # lr = 1
        assert_close(analytic, numeric[name], f"the gradient of {name} implied by _backward",
                     describe_input("X", X), "compare with utils.gradient_check",
                     **tolerance(config, "finite_differences"))


def test_train_partial_batches_and_seed(numpy_ann):
    """NumpyANN.train covers every row; the same seed gives the same weights"""
    rng = np.random.default_rng(9)
    X, y = rng.random((23, 6)), np.eye(3)[rng.integers(0, 3, 23)]
    weights = []
    for _ in range(2):
        ann = numpy_ann.new("NumpyANN", 6, 5, 3, 0.1, random_seed=7)
        ann.spy("_backward")
        ann.call("train", X, y, X, y, epochs=3, batch_size=5)
        rows = sorted(c[0][0] for c in ann.spy_log("_backward") if c and c[0])
        if rows != sorted([5, 5, 5, 5, 3] * 3):
            fail(f"train(23 rows, epochs=3, batch_size=5) called _backward with batches {rows}; "
                 "expected 5, 5, 5, 5, 3 per epoch")
        weights.append(as_array(ann.get("W1"), "W1"))
    assert_close(weights[1], weights[0], "W1 after a second identical training run",
                 hint="training must be deterministic for a given random_seed")


def test_predict_leaves_stored_activations_alone(numpy_ann):
    """NumpyANN.predict gives the probabilities and leaves the stored activations and the weights alone"""
    rng = np.random.default_rng(12)
    ann = numpy_ann.new("NumpyANN", 6, 5, 4, 0.1, random_seed=3)
    ann.set("b1", rng.normal(0, 0.1, (1, 5)))
    X, X2 = rng.random((7, 6)), rng.random((9, 6))
    ann.call("_forward", X)
    stored = {name: as_array(ann.get(name), f"self.{name} after _forward") for name in ("z1", "a1", "z2", "a2")}
    params = params_of(ann)
    assert_close(ann.call("predict", X2), ref.ann_forward(params, X2)[3], "predict", describe_input("X", X2))
    for name, value in stored.items():
        assert_close(ann.get(name), value, f"self.{name} after predict", describe_input("X", X2),
                     "predict must not store activations: use self._forward(X, training=False)")
    for name, value in params.items():
        assert_close(ann.get(name), value, f"self.{name} after predict", hint="predict must not train")


@pytest.mark.training
@pytest.mark.cost(3.5)  # seconds of the reference here, 2 threads (make bench)
@pytest.mark.weight(4)
@pytest.mark.visibility("visible")
def test_accuracy_threshold(numpy_ann, fmnist_data, config, feedback):
    """NumpyANN reaches the accuracy threshold on Fashion-MNIST (grader-computed)"""
    b = config["budget"]["numpy_ann"]
    X_train, y_train, X_test, y_test = fmnist_data
    n = b["train_images"]
    relabel = ref.Relabelling(numpy_ann.grading_seed("labels"))     # trained on the grader's own labelling
    numpy_ann.seed(b["seed"])
    ann = numpy_ann.new("NumpyANN", 784, b["hidden_size"], 10, b["lr"], random_seed=b["seed"])
    X = flat_images(X_train[:n])
    v = b["val_images"]
    Xv = flat_images(X_train[-v:])
    ann.call("train", X, targets(relabel.labels(y_train[:n])), Xv, targets(relabel.labels(y_train[-v:])),
             epochs=b["epochs"], batch_size=b["batch_size"], timeout=config["time_limits"]["train_numpy_ann"])
    params = {}
    for name, shape in (("W1", (784, b["hidden_size"])), ("b1", (1, b["hidden_size"])),
                        ("W2", (b["hidden_size"], 10)), ("b2", (1, 10))):
        params[name] = as_array(ann.get(name), f"trained {name}", shape=shape)
    m = b["test_images"]
    probs = ref.in_chunks(lambda x: ref.ann_forward(params, x)[3], X_test[:m])
    check_predict_agrees(ann, probs[:1000].argmax(axis=1), X_test[:1000], config, feedback)
    feedback.accuracy("numpy_ann", probs.argmax(axis=1), y_test[:m], "NumpyANN",
                      f"trained on {n} images for {b['epochs']} epochs with the grader's own labelling of the "
                      f"classes, evaluated by the grader on {m} test images", relabel=relabel)


def check_predict_agrees(ann, grader_labels, images, config, feedback):
    """Instructor report only: the student's predict() should agree with the grader's own
    predictions from the trained weights; if not, it may be looking answers up."""
    n = len(images)
    try:
        got = as_array(ann.call("predict", flat_images(images)), "predict", shape=(n, 10))
    except GradeFailure:
        return
    agree = float(np.mean(got.argmax(axis=1) == grader_labels))
    if agree < config["cutoffs"]["numpy_predict_agreement"]:
        feedback.instructor(f"numpy_ann: predict() agrees with the trained weights' predictions on only {agree:.0%} "
                        f"of {n} test images")
