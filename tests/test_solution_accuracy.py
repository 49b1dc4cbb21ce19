"""The reference scripts reach their thresholds (the cheap ones run here in full;
the CNN and fashionmnist scripts run in `make solutions`, and the grader's
accuracy tests train them in the self-tests of the autograder)."""
import os
import re
import subprocess
import sys

import pytest

from conftest import PYTHON, ROOT, SOLUTION

sys.path.insert(0, os.path.join(ROOT, "tools"))
import grading_cache  # noqa: E402
from grader import config as config_mod  # noqa: E402

# one thread: make test runs other work beside it (the accuracy does not depend on it beyond the margin)
SCRIPT_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MPLBACKEND": "Agg"}


@pytest.mark.duration(100)
@pytest.mark.parametrize("script", ["numpy_ann.py", "pytorch_ann.py"])
def test_reference_script_clears_threshold_with_margin(script, tmp_path):
    """The script as a student runs it trains on the full data and prints PASS with its accuracy.  Its run is
    reused (tools/grading_cache.py) while the script, utils.py, the Python, the libraries and the data are
    the same bytes."""
    def run():
        proc = subprocess.run([PYTHON, f"{SOLUTION}/{script}"], cwd=tmp_path, capture_output=True, text=True,
                              timeout=600, env=dict(os.environ, **SCRIPT_ENV))
        return {"returncode": proc.returncode, "stdout": proc.stdout[-4000:], "stderr": proc.stderr[-2000:]}
    key = grading_cache.script_key([f"{SOLUTION}/{script}", f"{SOLUTION}/utils.py"],
                                   extra=[script, *sorted(SCRIPT_ENV.items())])
    out, _ = grading_cache.cached(key, run, keep=lambda out: out["returncode"] == 0)
    assert out["returncode"] == 0, out["stdout"][-2000:] + out["stderr"]
    accuracy = float(re.search(r"PASS .* accuracy: ([0-9.]+) >=", out["stdout"]).group(1))
    assert accuracy >= config_mod.load()["thresholds"][script[:-3]] + 0.03


def test_committed_fmnist_weights_reach_090_on_the_full_test_set(solution_path):
    import torch
    import fashionmnist
    from utils import load_mnist_f
    _, _, X_test, y_test = load_mnist_f(return_tensor=True, allow_download=False)
    model = fashionmnist.load_model(f"{SOLUTION}/fmnist.pth")
    accuracy = fashionmnist.evaluate(model, X_test.unsqueeze(1).float() / 255, y_test)
    assert accuracy >= 0.90
    assert all(isinstance(v, torch.Tensor) for v in torch.load(f"{SOLUTION}/fmnist.pth", weights_only=True).values())
