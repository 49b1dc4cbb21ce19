"""The grader's own numpy CNN forward pass agrees with PyTorch's on the reference model."""
import os
import sys

import numpy as np
import pytest

from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "autograder"))
from grader import refmath  # noqa: E402


def test_numpy_cnn_matches_torch_in_evaluation_mode(solution_path):
    import torch
    from pytorch_cnn import PyTorchCNN
    from utils import load_mnist_f
    X_train, y_train, X_test, _ = load_mnist_f(allow_download=False)
    net = PyTorchCNN(random_seed=3)
    x = torch.from_numpy(X_train[:256]).unsqueeze(1).float() / 255
    net.train(x, torch.eye(10)[torch.from_numpy(y_train[:256])], x[:8], torch.eye(10)[y_train[:8]], epochs=2)
    state = {k: v.numpy() for k, v in net.model.state_dict().items()}
    assert np.abs(state["3.running_mean"]).max() > 0          # BatchNorm statistics are not trivial
    net.model.eval()
    with torch.no_grad():
        expected = net.model(torch.from_numpy(X_test[:300]).unsqueeze(1).float() / 255).numpy()
    got = refmath.cnn_logits(state, X_test[:300])
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-4)


def test_numpy_cnn_rejects_a_different_architecture():
    shapes = refmath.cnn_state_shapes()
    state = {k: np.zeros(s) for k, s in shapes.items()}
    state["21.weight"] = np.zeros((64, 256))
    with pytest.raises(ValueError, match=r"wrong shapes \['21.weight'\]"):
        refmath.cnn_predict(state, np.zeros((2, 28, 28), dtype=np.uint8))


def test_cnn_state_mismatch_names_what_differs_and_nothing_when_it_fits():
    """The check the CNN accuracy test makes before training (and cnn_logits after it)."""
    state = {k: np.zeros(s) for k, s in refmath.cnn_state_shapes().items()}
    assert refmath.cnn_state_mismatch(state) == ""
    del state["3.running_var"]
    state["12.extra"] = np.zeros(3)
    assert refmath.cnn_state_mismatch(state) == ("missing ['3.running_var'], unexpected ['12.extra'], "
                                                 "wrong shapes []")


def test_relabelling_moves_every_class_and_maps_back():
    seen = set()
    for seed in range(200):
        r = refmath.Relabelling(seed)
        assert sorted(r.new) == list(range(10)) and not np.any(r.new == np.arange(10)), r.new
        labels = np.arange(10).repeat(3)
        assert np.array_equal(r.true_classes(r.labels(labels)), labels)
        assert np.array_equal(refmath.Relabelling(seed).new, r.new)          # a function of the seed
        seen.add(tuple(r.new))
    assert len(seen) > 150                                                   # and not one fixed answer


def test_accuracy_under_relabelling_reports_weights_that_ignored_the_targets():
    from grader.feedback import Feedback

    class Record:
        config = {"thresholds": {"numpy_ann": 0.5}, "feedback": {"per_class": False, "confusions": 3},
                  "cutoffs": {"untrained_weights": 0.5}, "partial_credit": {"fraction": 0.0, "window": 0.02}}

        def __init__(self):
            self.instructor_notes = []
    r = refmath.Relabelling(7)
    labels = np.arange(10).repeat(50)
    honest, embedded = Feedback(Record()), Feedback(Record())
    assert honest.accuracy("numpy_ann", r.labels(labels), labels, "NumpyANN", "d", relabel=r) == 1.0
    with pytest.raises(Exception, match="below the threshold"):
        embedded.accuracy("numpy_ann", labels, labels, "NumpyANN", "d", relabel=r)   # the true numbers
    assert honest.record.instructor_notes == []
    assert [n[:61] for n in embedded.record.instructor_notes] == \
        ["numpy_ann: the trained weights predict the true class numbers"]


def _rule(gap_word=lambda t, v: t - v > 0.05, floor_word=lambda t, v: t < 0.80, floor_first=False, epoch=-1):
    """report_my_judgement's rule with its parts replaceable: the right rule and its wrong twins."""
    def judge(metrics):
        t, v = metrics["train_accs"][epoch], metrics["val_accs"][epoch]
        checks = [(floor_word, "underfitting"), (gap_word, "overfitting")]
        for test, word in (checks if floor_first else checks[::-1]):
            if test(t, v):
                return word
        return "generalizing"
    return judge


def _judgements(rule):
    return [rule({"train_accs": list(t), "val_accs": list(v)}) for t, v in refmath.JUDGEMENT_CASES]


def test_judgement_cases_tell_the_rule_from_its_wrong_twins():
    """Each plausible wrong rule gives a wrong word on at least one of refmath.JUDGEMENT_CASES (the
    cases of the report_my_judgement tests), and the right rule written other ways, in float32 too,
    never does: the case at exactly t - v = 0.05 must not depend on how the difference is written."""
    import torch
    expected = _judgements(refmath.judgement)
    assert set(expected) == {"overfitting", "underfitting", "generalizing"}
    f32 = np.float32
    equivalent = {
        "t > v + gap": _rule(gap_word=lambda t, v: t > v + 0.05),
        "t - gap > v": _rule(gap_word=lambda t, v: t - 0.05 > v),
        "percent": _rule(gap_word=lambda t, v: 100 * t - 100 * v > 5, floor_word=lambda t, v: 100 * t < 80),
        "rounded": _rule(gap_word=lambda t, v: round(t - v, 2) > 0.05),
        "numpy float32": _rule(gap_word=lambda t, v: f32(t) - f32(v) > 0.05, floor_word=lambda t, v: f32(t) < 0.80),
        "torch float32": _rule(gap_word=lambda t, v: bool(torch.tensor(t) - torch.tensor(v) > 0.05),
                               floor_word=lambda t, v: bool(torch.tensor(t) < 0.80)),
        "floor as not >=": _rule(floor_word=lambda t, v: not t >= 0.80),
    }
    for name, rule in equivalent.items():
        assert _judgements(rule) == expected, name
    twins = {
        "gap reversed (v - t)": _rule(gap_word=lambda t, v: v - t > 0.05),
        "gap comparison reversed (<)": _rule(gap_word=lambda t, v: t - v < 0.05),
        "gap as abs(t - v)": _rule(gap_word=lambda t, v: abs(t - v) > 0.05),
        "gap >= (off by one)": _rule(gap_word=lambda t, v: t - v >= 0.05),
        "gap threshold 0.1": _rule(gap_word=lambda t, v: t - v > 0.1),
        "gap threshold 0.01": _rule(gap_word=lambda t, v: t - v > 0.01),
        "gap threshold 5 (percent)": _rule(gap_word=lambda t, v: t - v > 5),
        "floor <= (off by one)": _rule(floor_word=lambda t, v: t <= 0.80),
        "floor reversed (>)": _rule(floor_word=lambda t, v: t > 0.80),
        "floor 0.85": _rule(floor_word=lambda t, v: t < 0.85),
        "floor 0.75": _rule(floor_word=lambda t, v: t < 0.75),
        "floor on v": _rule(floor_word=lambda t, v: v < 0.80),
        "floor tested first": _rule(floor_first=True),
        "first epoch": _rule(epoch=0),
        "middle epoch": _rule(epoch=1),
    }
    assert [name for name, rule in twins.items() if _judgements(rule) == expected] == []
