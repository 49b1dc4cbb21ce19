"""The reference scripts reach their thresholds (the cheap ones run here in full;
the CNN and fashionmnist scripts run in `make solutions`, and the grader's
accuracy tests train them in the self-tests of the autograder)."""
import re
import subprocess

import pytest

from conftest import PYTHON, SOLUTION


@pytest.mark.parametrize("script, threshold", [("numpy_ann.py", 0.77), ("pytorch_ann.py", 0.80)])
def test_reference_script_clears_threshold_with_margin(script, threshold, tmp_path):
    proc = subprocess.run([PYTHON, f"{SOLUTION}/{script}"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    accuracy = float(re.search(r"PASS .* accuracy: ([0-9.]+) >=", proc.stdout).group(1))
    assert accuracy >= threshold + 0.03


def test_committed_fmnist_weights_reach_090_on_the_full_test_set(solution_path):
    import torch
    import fashionmnist
    from utils import load_mnist_f
    _, _, X_test, y_test = load_mnist_f(return_tensor=True, allow_download=False)
    model = fashionmnist.load_model(f"{SOLUTION}/fmnist.pth")
    accuracy = fashionmnist.evaluate(model, X_test.unsqueeze(1).float() / 255, y_test)
    assert accuracy >= 0.90
    assert all(isinstance(v, torch.Tensor) for v in torch.load(f"{SOLUTION}/fmnist.pth", weights_only=True).values())
