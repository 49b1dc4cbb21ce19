"""checks.check_example_figures on figures described as the worker records them (no grading)."""
import os
import sys

import numpy as np
import pytest

from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "autograder"))
from grader.checks import CLASS_NAMES, GradeFailure, check_example_figures  # noqa: E402

RNG = np.random.default_rng(4)
IMAGES = RNG.random((6, 28, 28))
LABELS = np.array([0, 1, 2, 3, 4, 5])
PREDICTED = np.array([1, 1, 6, 3, 4, 0])          # images 0, 2 and 5 misclassified
WANTED = {"wrong.png": False, "right.png": True}


def figure(name, index, title, scale=1.0):
    return {"file": name, "titles": ["", title], "images": [IMAGES[index][None] * scale]}


def title(index, swap=False, form="predicted: {p}\ntrue: {t}"):
    p, t = CLASS_NAMES[PREDICTED[index]], CLASS_NAMES[LABELS[index]]
    return form.format(p=t, t=p) if swap else form.format(p=p, t=t)


def test_examples_titled_as_their_images_pass_in_any_wording_and_scale():
    saved = [figure("wrong.png", 0, title(0, form="Predicted: {p} / True: {t}"), scale=255),
             figure("right.png", 3, title(3, form="true: {t}, predicted: {p}"))]
    check_example_figures(saved, IMAGES, LABELS, PREDICTED, WANTED, "save_example_images")


def test_a_class_name_with_a_slash_is_read_whole():
    labels, predicted = LABELS.copy(), PREDICTED.copy()
    labels[2], predicted[2] = 0, 4                  # true T-shirt/top, predicted Coat
    saved = [figure("wrong.png", 2, "predicted: Coat / true: T-shirt/top"),
             figure("right.png", 1, f"predicted: {CLASS_NAMES[1]} / true: {CLASS_NAMES[1]}")]
    check_example_figures(saved, IMAGES, labels, predicted, WANTED, "save_example_images")


@pytest.mark.parametrize("saved, says", [
    ([figure("wrong.png", 0, title(0, swap=True)), figure("right.png", 3, title(3))], "but its title says"),
    ([figure("wrong.png", 3, title(3)), figure("right.png", 1, title(1))], "must show a misclassified"),
    ([figure("wrong.png", 0, title(0)), figure("right.png", 2, title(2))], "must show a correctly classified"),
    ([figure("wrong.png", 0, title(0))], "did not save right.png"),
    ([figure("wrong.png", 0, "image 0"), figure("right.png", 3, title(3))], "no title reads"),
    ([figure("wrong.png", 0, "predicted: Cat / true: Dog"), figure("right.png", 3, title(3))], "must name two"),
    ([{"file": "wrong.png", "titles": [title(0)], "images": [RNG.random((28, 28))]},
      figure("right.png", 3, title(3))], "does not show one of the images"),
])
def test_each_wrong_example_is_named(saved, says):
    with pytest.raises(GradeFailure) as failure:
        check_example_figures(saved, IMAGES, LABELS, PREDICTED, WANTED, "save_example_images")
    assert says in str(failure.value), str(failure.value)
