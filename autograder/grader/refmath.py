"""The grader's own computations for hidden tests (never shipped to students).

Everything here works on float64 numpy arrays the grader owns, so a verdict
never depends on the student's code beyond the values it returned.
"""
import os

import numpy as np


def relu(z):
    return np.maximum(np.asarray(z, dtype=np.float64), 0.0)


def relu_grad(z):
    return (np.asarray(z, dtype=np.float64) > 0).astype(np.float64)


def softmax(z):
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def cross_entropy(p, y):
    return float(-np.sum(y * np.log(np.clip(p, 1e-300, 1.0))) / p.shape[0])


def ann_forward(params, X):
    """(z1, a1, z2, a2) of the two-layer network with params W1, b1, W2, b2."""
    z1 = X @ params["W1"] + params["b1"]
    a1 = relu(z1)
    z2 = a1 @ params["W2"] + params["b2"]
    return z1, a1, z2, softmax(z2)


def ann_gradients(params, X, y):
    z1, a1, _, a2 = ann_forward(params, X)
    dz2 = (a2 - y) / X.shape[0]
    dz1 = (dz2 @ params["W2"].T) * relu_grad(z1)
    return {"W1": X.T @ dz1, "b1": dz1.sum(axis=0, keepdims=True),
            "W2": a1.T @ dz2, "b2": dz2.sum(axis=0, keepdims=True)}


def numeric_gradients(params, X, y, h=1e-6):
    grads = {}
    for name, value in params.items():
        g = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            old = value[index]
            value[index] = old + h
            plus = cross_entropy(ann_forward(params, X)[3], y)
            value[index] = old - h
            minus = cross_entropy(ann_forward(params, X)[3], y)
            value[index] = old
            g[index] = (plus - minus) / (2 * h)
        grads[name] = g
    return grads


def linear_relu_linear_logits(state, X):
    """Logits of nn.Sequential(Linear, ReLU, Linear) from its state_dict arrays."""
    h = relu(X @ state["0.weight"].T + state["0.bias"])
    return h @ state["2.weight"].T + state["2.bias"]


def accuracy(predicted, labels):
    return float(np.mean(np.asarray(predicted) == np.asarray(labels)))


def reference_cnn(num_classes=10):
    """The assignment's CNN architecture, built by the grader to evaluate student weights."""
    import torch.nn as nn
    layers = []
    channels = [1, 32, 64, 128, 256]
    for c_in, c_out in zip(channels[:-1], channels[1:]):
        layers += [nn.Conv2d(c_in, c_out, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2), nn.BatchNorm2d(c_out),
                   nn.Dropout(0.3)]
    layers += [nn.Flatten(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, num_classes)]
    return nn.Sequential(*layers)


def cnn_predict_in_process(state, X_uint8, chunk=1000):
    """Labels predicted by the assignment CNN with the student's trained state_dict (eval mode).

    Imports torch; the grader calls it through ``cnn_predict`` in a separate process."""
    import torch
    model = reference_cnn()
    expected = model.state_dict()
    missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    wrong = [k for k in expected if k in state and tuple(np.shape(state[k])) != tuple(expected[k].shape)]
    if missing or extra or wrong:
        raise ValueError("the trained model's state_dict does not match the assignment's architecture "
                         f"(missing {missing[:4]}, unexpected {extra[:4]}, wrong shapes {wrong[:4]})")
    model.load_state_dict({k: torch.from_numpy(np.asarray(v)).to(expected[k].dtype) for k, v in state.items()})
    model.eval()
    out = []
    with torch.no_grad():
        for s in range(0, X_uint8.shape[0], chunk):
            x = torch.from_numpy(X_uint8[s:s + chunk].astype(np.float32) / 255.0).unsqueeze(1)
            out.append(model(x).argmax(dim=1).numpy())
    return np.concatenate(out)


def ann_sgd_steps(state, X, y, lr, steps):
    """Full-batch SGD on the mean cross-entropy of Linear-ReLU-Linear (state_dict naming)."""
    s = {k: np.array(v, dtype=np.float64) for k, v in state.items()}
    n = X.shape[0]
    for _ in range(steps):
        z1 = X @ s["0.weight"].T + s["0.bias"]
        h = relu(z1)
        p = softmax(h @ s["2.weight"].T + s["2.bias"])
        d2 = (p - y) / n
        d1 = (d2 @ s["2.weight"]) * (z1 > 0)
        grads = {"2.weight": d2.T @ h, "2.bias": d2.sum(axis=0), "0.weight": d1.T @ X, "0.bias": d1.sum(axis=0)}
        for k, g in grads.items():
            s[k] -= lr * g
    return s


def judgement(metrics, gap=0.05, floor=0.80):
    """The rule stated in the handout's report_my_judgement docstring."""
    t, v = float(metrics["train_accs"][-1]), float(metrics["val_accs"][-1])
    if t - v > gap:
        return "overfitting"
    if t < floor:
        return "underfitting"
    return "generalizing"


def cnn_predict(state, X_uint8, timeout=600):
    """``cnn_predict_in_process`` run in a short-lived process of the grader's own
    (trusted) code, so the grading process never holds torch's memory.
    Raises ValueError when the state_dict does not fit the architecture."""
    import subprocess
    import sys

    from . import protocol
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    request = protocol.encode({"state": {k: np.asarray(v) for k, v in state.items()},
                               "images": np.ascontiguousarray(X_uint8, dtype=np.uint8)})
    proc = subprocess.run([sys.executable, "-m", "grader.cnn_eval"], input=request, capture_output=True,
                          cwd=here, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"the grader's CNN evaluation failed: {proc.stderr.decode('utf-8', 'replace')[-2000:]}")
    import io
    reply = protocol.read_message(io.BytesIO(proc.stdout))
    if "error" in reply:
        raise ValueError(reply["error"])
    return reply["labels"]
