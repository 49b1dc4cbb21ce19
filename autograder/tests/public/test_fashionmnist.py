"""Public tests of fashionmnist.py and fmnist.pth."""
import numpy as np

from grader.kit import as_labels, fail, tensor

WEIGHTS = "fmnist.pth"


def test_model_predicts_labels(fashionmnist):
    """fashionmnist: build_model() and predict(model, X) give integer labels"""
    model = fashionmnist.call("build_model", keep=True)
    X = np.random.default_rng(0).random((5, 1, 28, 28)).astype(np.float32)
    labels = as_labels(fashionmnist.call("predict", model.ref(), tensor(X)), "predict(model, X)", 5)
    if labels.min() < 0 or labels.max() > 9:
        fail(f"predict returned labels {labels.tolist()}; expected values in 0..9")


def test_count_parameters(fashionmnist):
    """fashionmnist.count_parameters counts the trainable parameters, and only those"""
    model = fashionmnist.call("build_model", keep=True)
    got = fashionmnist.call("count_parameters", model.ref())
    expected = model.param_count()
    if got != expected:
        fail(f"count_parameters(build_model()) returned {got!r}; the model has {expected:,} trainable parameters")
    frozen = model.freeze_alternate()
    expected = model.param_count()
    got = fashionmnist.call("count_parameters", model.ref())
    if got != expected:
        fail(f"count_parameters returned {got!r} for build_model() with {len(frozen)} of its parameter tensors frozen "
             f"(requires_grad=False: {', '.join(frozen[:3])}{', ...' if len(frozen) > 3 else ''}); it has "
             f"{expected:,} trainable parameters. Count only the parameters with requires_grad.")


def test_weights_file_loads_safely(fashionmnist, config):
    """fmnist.pth is a state_dict that loads into build_model() with weights_only=True"""
    limit = config["size_limits"][WEIGHTS]
    if fashionmnist.path(WEIGHTS) is None:
        if fashionmnist.submitted_path(WEIGHTS):
            fail(f"{WEIGHTS} is larger than the limit of {limit:,} bytes")
        fail(f"{WEIGHTS} was not found in your submission; run fashionmnist.py to create it")
    model = fashionmnist.call("build_model", keep=True)
    model.load_weights(WEIGHTS)
