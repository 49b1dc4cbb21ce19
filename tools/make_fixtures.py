"""Generate autograder/tests/public/fixtures/expected.npz from the reference.

The public tests ship to students, so they compare against these stored
values, never against reference code.  Run via `make fixtures`.
"""
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "solution"))
OUT = os.path.join(ROOT, "autograder", "tests", "public", "fixtures", "expected.npz")

from numpy_ann import NumpyANN  # noqa: E402


def main():
    rng = np.random.default_rng(2024)
    e = {}
    ann = NumpyANN(5, 4, 3, 0.1)
    e["relu_in"] = np.array([[-2.0, -0.5, 0.0, 0.5, 3.0], [1e-9, -1e-9, 0.0, 7.0, -7.0]])
    e["relu_out"] = ann._relu(e["relu_in"])
    e["relu_grad_out"] = ann._relu_grad(e["relu_in"])
    e["softmax_in"] = rng.normal(0, 3, (4, 3))
    e["softmax_out"] = ann._softmax(e["softmax_in"])
    e["ce_true"] = np.eye(3)[[0, 2, 1, 1]]
    e["ce_out"] = np.array(ann._cross_entropy(e["softmax_out"], e["ce_true"]))
    e["fwd_X"] = rng.random((6, 5))
    e["fwd_a2"] = ann._forward(e["fwd_X"], training=True)
    for name in ("z1", "a1", "z2"):
        e[f"fwd_{name}"] = getattr(ann, name)
    e["bwd_y"] = np.eye(3)[[0, 1, 2, 0, 1, 2]]
    ann._backward(e["fwd_X"], e["bwd_y"])
    for name in ("W1", "b1", "W2", "b2"):
        e[f"bwd_{name}"] = getattr(ann, name)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    tmp = OUT + ".tmp.npz"
    np.savez(tmp, **e)
    os.replace(tmp, OUT)
    print(f"wrote {os.path.relpath(OUT, ROOT)} ({len(e)} arrays)")


if __name__ == "__main__":
    main()
