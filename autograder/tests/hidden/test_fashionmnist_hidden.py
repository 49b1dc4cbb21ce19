"""Hidden tests of fashionmnist.py: the submitted weights on the full test set."""
import pytest

from grader import refmath
from grader.checks import as_labels, check_png, check_threshold, fail
from grader.plugin import leaderboard, note
from grader.session import data

WEIGHTS = "fmnist.pth"


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
    labels = as_labels(fashionmnist.call("predict", model.ref(), data(X_test[:m], "float32", 1 / 255, (m, 1, 28, 28),
                                                                       torch=True),
                                         timeout=config["time_limits"]["evaluate_fashionmnist"]),
                       "predict(model, X_test)", m)
    acc = refmath.accuracy(labels, y_test[:m])
    leaderboard("Accuracy", round(acc, 4))
    note(check_threshold(acc, config["thresholds"]["fashionmnist"], "fashionmnist", config,
                         f"{WEIGHTS} evaluated by the grader on {m} test images"))


@pytest.mark.parametrize("name", ["fmnist_training_loss.png", "fmnist_misclassified.png", "fmnist_correct.png"])
@pytest.mark.weight(0.5)
def test_submitted_figures(fashionmnist, name):
    """fashionmnist: the submitted figure is a PNG (its content is graded by hand)"""
    check_png(fashionmnist.submitted_path(name), name)
