"""The test writer's kit: the one grader module a test in autograder/tests/ imports.

    from grader.kit import assert_close, flat_images, targets, tolerance

What a test needs, named for what it means:

* **The student's objects** come from the fixtures ``numpy_ann``, ``pytorch_ann``, ``pytorch_cnn`` and
  ``fashionmnist``: ``numpy_ann.new("NumpyANN", 784, 128, 10, 0.1)`` makes an object in the student's
  worker and gives back a handle (``.call(method, ...)``, ``.get(attr)``, ``.set(attr, value)``,
  ``.state_dict()``...).  What comes back is plain data, never the student's object.
* **Data in the forms the stubs take**, built in the worker from compact uint8 images:
  ``flat_images`` (N x 784 in [0, 1], the ANNs), ``image_batch`` (a float32 tensor N x 1 x 28 x 28 in
  [0, 1], the CNN and fashionmnist), ``targets`` (one-hot rows), ``tensor`` (any array as a float32
  tensor).  Labels stay plain integer arrays.
* **The grader's own math**: ``ref`` (``grader.refmath``), for private tests only: it is not in the
  students' handout, and a public test that names it fails test_structure.
* **The checks**: ``assert_close``, ``as_array``, ``as_labels``, ``fail`` and the ``check_*`` helpers
  (``grader.checks``); each failure message names the function, the input and a hint.
* **The numbers a test judges by**, by name, from config.toml: ``tolerance(config, "sgd_step")`` gives the
  ``rtol`` and ``atol`` of a comparison; thresholds, cutoffs and budgets are ``config["thresholds"]``,
  ``config["cutoffs"]`` and ``config["budget"]``.  A test holds no literal tolerance or cutoff
  (test_structure checks it).

Tags are pytest markers (``@pytest.mark.weight(2)``, ``@pytest.mark.training``...): grader/plugin.py's
MARKERS lists them.
"""
from .assignment import CNN, file_of
from .checks import (GradeFailure, as_array, as_labels, assert_close, check_example_figures, check_judgement_rule,
                     check_metrics, check_plot_and_judgement, check_png, check_prediction_mode, check_trained,
                     check_training_mode, describe_input, fail)
from .session import data as _data
from .session import onehot as _onehot
from .session import tensor

__all__ = ["CNN", "GradeFailure", "PIXEL", "as_array", "as_labels", "assert_close", "check_example_figures",
           "check_judgement_rule", "check_metrics", "check_plot_and_judgement", "check_png", "check_prediction_mode",
           "check_trained", "check_training_mode", "describe_input", "fail", "file_of", "flat_images", "image_batch",
           "targets", "tensor", "tolerance"]

PIXEL = 1 / 255         # a uint8 grey level in the stubs' [0, 1] inputs


def flat_images(images, torch=False):
    """uint8 images (N x 28 x 28 or N x 784) as the ANNs take them: N x 784 in [0, 1]; float64 numpy for
    numpy_ann, a float32 tensor with ``torch=True``."""
    return _data(images, "float32" if torch else "float64", PIXEL, (len(images), 784), torch=torch)


def image_batch(images):
    """uint8 images (N x 28 x 28) as the CNN and fashionmnist take them: a float32 tensor N x 1 x 28 x 28
    in [0, 1]."""
    return _data(images, "float32", PIXEL, (len(images), 1, 28, 28), torch=True)


def targets(labels, classes=10, torch=False):
    """Integer labels as the stubs' one-hot ``y``: float64 rows for numpy_ann, a float32 tensor with
    ``torch=True``."""
    return _onehot(labels, classes, "float32" if torch else "float64", torch=torch)


def tolerance(config, name):
    """{"rtol": ..., "atol": ...} of the comparison ``name`` in config [tolerances], for assert_close."""
    rtol, atol = config["tolerances"][name]
    return {"rtol": rtol, "atol": atol}


def __getattr__(name):
    if name == "ref":               # imported on first use: the handout has no refmath
        from . import refmath
        return refmath
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
