"""Hidden tests of fashionmnist.py: the submitted weights on the full test set."""
import numpy as np
import pytest

from grader import refmath
from grader.checks import as_labels, check_png, check_threshold, fail
from grader.plugin import instructor_note, leaderboard, note
from grader.session import data

WEIGHTS = "fmnist.pth"


@pytest.mark.training
@pytest.mark.weight(4)
@pytest.mark.visibility("visible")
def test_accuracy_threshold(fashionmnist, fmnist_data, config):
    """fashionmnist: fmnist.pth reaches the accuracy threshold on the test set (grader-computed)"""
    if fashionmnist.path(WEIGHTS) is None:
        fail(f"{WEIGHTS} was not found in your submission (or exceeds the size limit)")
    _, _, X_test, y_test = fmnist_data
    m = config["budget"]["fashionmnist"]["test_images"]
    model = fashionmnist.call("build_model", keep=True)
    model.load_weights(WEIGHTS, timeout=config["time_limits"]["evaluate_fashionmnist"])
    model.set_mode(False)
    limit = config["time_limits"]["evaluate_fashionmnist"]

    chunk = config["budget"]["fashionmnist"]["chunk"]

    def labels_for(images):
        labels = []
        for start in range(0, len(images), chunk):      # streamed: the worker never holds all test images
            part = images[start:start + chunk]
            got = fashionmnist.call("predict", model.ref(), data(part, "float32", 1 / 255, (len(part), 1, 28, 28),
                                                                  torch=True), timeout=limit)
            labels.append(as_labels(got, "predict(model, X_test)", len(part)))
        return np.concatenate(labels)

    # evaluated on test images with a little random noise: answers looked up
    # from the exact test images do not help (README: residual risks)
    noisy = labels_for(refmath.perturb_images(X_test[:m]))
    acc = refmath.accuracy(noisy, y_test[:m])
    k = min(m, 2000)
    exact = refmath.accuracy(labels_for(X_test[:k]), y_test[:k])
    noisy_k = refmath.accuracy(noisy[:k], y_test[:k])
    if exact - noisy_k > 0.15:
        instructor_note(f"fashionmnist: accuracy {exact:.3f} on {k} exact test images but {noisy_k:.3f} on noisy "
                        "copies of them: the model may be looking answers up")
    leaderboard("Accuracy", round(acc, 4))
    note(check_threshold(acc, config["thresholds"]["fashionmnist"], "fashionmnist", config,
                         f"{WEIGHTS} evaluated by the grader on {m} test images, each with random noise of "
                         "at most 3 grey levels per pixel"))


@pytest.mark.parametrize("name", ["fmnist_training_loss.png", "fmnist_misclassified.png", "fmnist_correct.png"])
@pytest.mark.weight(0.5)
def test_submitted_figures(fashionmnist, name):
    """fashionmnist: the submitted figure is a PNG (its content is graded by hand)"""
    check_png(fashionmnist.submitted_path(name), name)
