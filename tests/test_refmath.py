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
    from grader.grading import Feedback

    class Run:
        config = {"thresholds": {"numpy_ann": 0.5}, "feedback": {"per_class": False, "confusions": 3},
                  "cutoffs": {"untrained_weights": 0.5}, "partial_credit": {"fraction": 0.0, "window": 0.02}}

        def __init__(self):
            self.instructor_notes = []
    r = refmath.Relabelling(7)
    labels = np.arange(10).repeat(50)
    honest, embedded = Feedback(Run()), Feedback(Run())
    assert honest.accuracy("numpy_ann", r.labels(labels), labels, "NumpyANN", "d", relabel=r) == 1.0
    with pytest.raises(Exception, match="below the threshold"):
        embedded.accuracy("numpy_ann", labels, labels, "NumpyANN", "d", relabel=r)   # the true numbers
    assert honest.run.instructor_notes == []
    assert [n[:61] for n in embedded.run.instructor_notes] == \
        ["numpy_ann: the trained weights predict the true class numbers"]
