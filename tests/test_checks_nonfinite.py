"""NaN, +inf and -inf are wrong answers: every check of grader/checks.py fails on them, clearly.

No docstring of the assignment allows a non-finite value, so no comparison may let one through
(``abs(got - expected) > tol`` is False for NaN, ``inf >= threshold`` is True).  Each check that
judges a number the student's code produced is fed each of the three values and must raise a
plain GradeFailure (never partial credit) whose message names what was checked and says why."""
import inspect
import os
import sys

import numpy as np
import pytest

from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "autograder"))
from grader import checks, protocol  # noqa: E402

BAD = {"nan": float("nan"), "+inf": float("inf"), "-inf": float("-inf")}
WHY = "NaN or infinite"
CONFIG = {"partial_credit": {"fraction": 0.5, "window": 0.05}}
KEYS = ("train_losses", "train_accs", "val_losses", "val_accs")


def metrics(bad=None, key="val_accs"):
    out = {k: [0.5, 0.6] for k in KEYS}
    if bad is not None:
        out[key] = [0.5, bad]
    return out


def figure(bad=None):
    def line(label, y):
        return {"label": label, "x": np.array([1.0, 2.0]), "y": np.array(y, dtype=np.float64)}
    axes = [{"title": "Loss", "xlabel": "epoch", "ylabel": "loss", "legend": ["train", "validation"],
             "lines": [line("train", [0.5, 0.6]), line("validation", [0.5, 0.6])]},
            {"title": "Accuracy", "xlabel": "epoch", "ylabel": "accuracy", "legend": ["train", "validation"],
             "lines": [line("train", [0.5, 0.6]), line("validation", [0.5, 0.6 if bad is None else bad])]}]
    return [{protocol.FIGURE: axes}, [{protocol.AXES: a} for a in axes]]


EXAMPLES = np.random.default_rng(0).random((2, 28, 28))


def example_figure(bad=None):
    shown = EXAMPLES[0].copy()
    if bad is not None:
        shown[3, 4] = bad
    return {"file": "correct.png", "titles": ["predicted: T-shirt/top / true: T-shirt/top"], "images": [shown]}


# check name -> (call with one bad value, words the message must hold besides the value's name)
CASES = {
    "as_array": lambda v: checks.as_array(np.array([1.0, v]), "forward", shape=(2,)),
    "assert_close": lambda v: checks.assert_close(np.array([1.0, v]), [1.0, 2.0], "forward"),
    "check_threshold": lambda v: checks.check_threshold(v, 0.8, "PyTorchANN", CONFIG),
    "check_metrics": lambda v: checks.check_metrics(metrics(v), 2, "PyTorchANN"),
    "check_metrics_figure": lambda v: checks.check_metrics_figure(figure(v), {k: np.array(x) for k, x in
                                                                              metrics().items()}, "plot()"),
    "check_trained": lambda v: checks.check_trained({"w": np.zeros(2)}, {"w": np.array([1.0, v])}, "train(...)"),
    "as_labels": lambda v: checks.as_labels(np.array([0.0, v]), "predict", 2),
    "check_example_figures": lambda v: checks.check_example_figures(
        [example_figure(v)], EXAMPLES, np.array([0, 1]), np.array([0, 1]), {"correct.png": True}, "save_examples"),
}
NAMED = {"as_array": "forward", "assert_close": "forward", "check_threshold": "PyTorchANN",
         "check_metrics": "val_accs", "check_metrics_figure": "validation", "check_trained": "train(...)",
         "as_labels": "predict", "check_example_figures": "correct.png"}
REASON = {"as_labels": "integer class labels",   # a float array is refused for its dtype, before its values
          "check_example_figures": "does not show one of the images"}   # an image with one is never matched

# every other function of checks.py, and why a non-finite number cannot reach a verdict through it
EXEMPT = {
    "fail": "raises the failure itself",
    "shape_of": "describes a shape", "kind_of": "describes a type", "describe_input": "describes a grader input",
    "first_differences": "lists differences for assert_close, which refuses non-finite values first",
    "check_png": "reads a file's bytes, no numbers", "read_student_file": "reads a file's bytes, no numbers",
    "check_plot_and_judgement": "judges the figure with check_metrics_figure and a string",
    "check_prediction_mode": "judges labels through as_labels",
    "check_judgement_rule": "compares the returned word with the rule's, no numbers",
    "confusion": "counts grader-computed integer labels", "class_report": "counts grader-computed integer labels",
    "check_training_mode": "judges the probe's record of which layers ran each backward pass, no number",
}


def test_every_check_is_fed_non_finite_values_or_says_why_not():
    functions = {name for name, f in inspect.getmembers(checks, inspect.isfunction)
                 if f.__module__ == checks.__name__ and not name.startswith("_")}
    assert functions - set(CASES) - set(EXEMPT) == set(), "add a case to CASES (or a reason to EXEMPT)"
    assert set(CASES) | set(EXEMPT) <= functions


@pytest.mark.parametrize("bad", BAD, ids=list(BAD))
@pytest.mark.parametrize("check", CASES)
def test_a_non_finite_answer_fails_with_a_clear_message(check, bad):
    with pytest.raises(checks.GradeFailure) as info:
        CASES[check](BAD[bad])
    assert type(info.value) is checks.GradeFailure, "no partial credit for a non-finite answer"
    message = str(info.value)
    assert REASON.get(check, WHY) in message, message
    assert NAMED[check] in message, message


@pytest.mark.parametrize("bad", BAD, ids=list(BAD))
def test_a_non_finite_number_inside_a_tensor_reply_fails(bad):
    reply = {protocol.TORCH: np.array(BAD[bad], dtype=np.float32), "dtype": "torch.float32"}   # a 0-dim tensor
    with pytest.raises(checks.GradeFailure, match=WHY):
        checks.assert_close(reply, 0.6, "accuracy", rtol=0, atol=1e-6)


def test_finite_answers_still_pass():
    assert checks.as_array(np.array([1.0, 2.0]), "forward", shape=(2,)).tolist() == [1.0, 2.0]
    zero_dim = {protocol.TORCH: np.array(0.6, dtype=np.float32), "dtype": "torch.float32"}
    assert float(checks.assert_close(zero_dim, 0.6, "accuracy", rtol=0, atol=1e-6)) == pytest.approx(0.6)
    assert float(checks.assert_close(0.6, 0.6, "accuracy", rtol=0, atol=1e-6)) == 0.6
    assert "accuracy 0.9000" in checks.check_threshold(0.9, 0.8, "PyTorchANN", CONFIG)
    assert set(checks.check_metrics(metrics(), 2, "PyTorchANN")) == set(KEYS)
    checks.check_metrics_figure(figure(), {k: np.array(x) for k, x in metrics().items()}, "plot()")
    checks.check_trained({"w": np.zeros(2)}, {"w": np.ones(2)}, "train(...)")
    checks.check_example_figures([example_figure()], EXAMPLES, np.array([0, 1]), np.array([0, 1]),
                                 {"correct.png": True}, "save_examples")
    with pytest.raises(checks.GradeFailure, match="did not change the weights"):
        checks.check_trained({"w": np.zeros(2)}, {"w": np.zeros(2)}, "train(...)")


def test_subnormal_numbers_become_zero_before_the_grader_computes_with_them():
    tiny = np.finfo(np.float64).tiny
    got = checks.as_array(np.array([1e-310, -4e-320, tiny, 1.0, -2.5]), "W1", shape=(5,))
    assert got.tolist() == [0.0, 0.0, tiny, 1.0, -2.5]
    assert not np.any((got != 0) & (np.abs(got) < tiny))
