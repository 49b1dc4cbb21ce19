"""The grader's own computations for private tests (never shipped to students).

Everything here works on float64 numpy arrays the grader owns, so a verdict
never depends on the student's code beyond the values it returned.
"""
import numpy as np

from .assignment import CNN


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


def in_chunks(fn, X_uint8, chunk=1000):
    """``fn`` applied to float64 rows in [0, 1] made from uint8 images, ``chunk`` images at a
    time, the results stacked: the grader never holds all test images as float64."""
    return np.concatenate([fn(X_uint8[s:s + chunk].reshape(-1, 784) / 255.0)
                           for s in range(0, X_uint8.shape[0], chunk)])


def accuracy(predicted, labels):
    return float(np.mean(np.asarray(predicted) == np.asarray(labels)))


# The assignment CNN (assignment.CNN) in numpy.  state_dict indices: block i's Conv2d is 5 * i and its
# BatchNorm2d 5 * i + 3; after the blocks, Flatten, then the two Linear layers.
def cnn_layer_indices():
    """([(conv, batchnorm) state_dict index of each block], first Linear, second Linear)."""
    n = len(CNN.block)
    blocks = [(n * i, n * i + CNN.block.index("BatchNorm2d")) for i in range(len(CNN.channels) - 1)]
    first = n * len(blocks) + 1                               # after Flatten
    return blocks, first, first + 2


def cnn_state_shapes(num_classes=CNN.classes):
    shapes = {}
    k = CNN.kernel
    blocks, first, second = cnn_layer_indices()
    for (conv, bn), c_in, c_out in zip(blocks, CNN.channels[:-1], CNN.channels[1:]):
        shapes.update({f"{conv}.weight": (c_out, c_in, k, k), f"{conv}.bias": (c_out,), f"{bn}.weight": (c_out,),
                       f"{bn}.bias": (c_out,), f"{bn}.running_mean": (c_out,), f"{bn}.running_var": (c_out,),
                       f"{bn}.num_batches_tracked": ()})
    shapes.update({f"{first}.weight": (CNN.hidden, CNN.channels[-1]), f"{first}.bias": (CNN.hidden,),
                   f"{second}.weight": (num_classes, CNN.hidden), f"{second}.bias": (num_classes,)})
    return shapes


def cnn_state_mismatch(state, num_classes=CNN.classes):
    """What keeps ``state`` (a state_dict: names to arrays) from fitting the assignment CNN, as text; "" when
    it fits."""
    expected = cnn_state_shapes(num_classes)
    missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    wrong = [k for k in expected if k in state and tuple(np.shape(state[k])) != expected[k]]
    if missing or extra or wrong:
        return f"missing {missing[:4]}, unexpected {extra[:4]}, wrong shapes {wrong[:4]}"
    return ""


def _conv3x3(x, weight, bias):
    n, c, h, w = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(2, 3))   # (N, C, H, W, 3, 3)
    columns = windows.transpose(0, 2, 3, 1, 4, 5).reshape(n * h * w, c * 9)
    out = columns @ weight.reshape(weight.shape[0], c * 9).T + bias                     # (N*H*W, out)
    return out.reshape(n, h, w, -1).transpose(0, 3, 1, 2)


def _maxpool2(x):
    n, c, h, w = x.shape
    h2, w2 = h // 2, w // 2
    return x[:, :, :2 * h2, :2 * w2].reshape(n, c, h2, 2, w2, 2).max(axis=(3, 5))


def cnn_logits(state, X_uint8, num_classes=CNN.classes, chunk=50):
    """Evaluation-mode logits (N, classes) of the assignment CNN with ``state`` (a state_dict of arrays).
    Raises ValueError when the state_dict does not fit the architecture."""
    mismatch = cnn_state_mismatch(state, num_classes)
    if mismatch:
        raise ValueError(f"the trained model's state_dict does not match the assignment's architecture ({mismatch})")
    p = {k: np.asarray(v, dtype=np.float32) for k, v in state.items()}
    blocks, first, second = cnn_layer_indices()
    out = []
    for s in range(0, X_uint8.shape[0], chunk):
        x = (X_uint8[s:s + chunk].astype(np.float32) / 255.0)[:, None]                   # (n, 1, 28, 28)
        for conv, bn in blocks:                       # the 3x3 convolution and 2x2 pooling of assignment.CNN
            x = _maxpool2(np.maximum(_conv3x3(x, p[f"{conv}.weight"], p[f"{conv}.bias"]), 0))
            scale = p[f"{bn}.weight"] / np.sqrt(p[f"{bn}.running_var"] + 1e-5)
            x = (x - p[f"{bn}.running_mean"][:, None, None]) * scale[:, None, None] + p[f"{bn}.bias"][:, None, None]
        x = x.reshape(x.shape[0], -1)                                                     # (n, 256)
        h = np.maximum(x @ p[f"{first}.weight"].T + p[f"{first}.bias"], 0)
        out.append(h @ p[f"{second}.weight"].T + p[f"{second}.bias"])
    return np.concatenate(out).astype(np.float64)


def cnn_predict(state, X_uint8):
    """Labels predicted by the assignment CNN with the student's trained state_dict (evaluation mode)."""
    return cnn_logits(state, X_uint8).argmax(axis=1)
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


# Synthetic curves for report_my_judgement: (train_accs, val_accs), three epochs each; the last epoch,
# (t, v), sits on one side of a boundary of the rule, and the earlier ones would give another word
# (a rule applied to the first, the best or the mean epoch).  Each wrong twin of the rule gives a
# wrong word on at least one case (tests/test_refmath.py proves it for the ones named here):
JUDGEMENT_CASES = (
    ((0.50, 0.99, 0.90), (0.50, 0.60, 0.84)),   # gap 0.06: overfitting (v - t, a gap of 0.1)
    ((0.50, 0.99, 0.90), (0.50, 0.60, 0.86)),   # gap 0.04: generalizing (t - v < gap, a gap of 0.01)
    ((0.50, 0.99, 0.82), (0.50, 0.60, 0.95)),   # v far above t: generalizing (abs(t - v))
    ((0.99, 0.50, 0.10), (0.60, 0.50, 0.05)),   # t - v is exactly 0.05 in floating point: underfitting (>=)
    ((0.99, 0.50, 0.70), (0.99, 0.50, 0.60)),   # gap 0.10 below the floor: overfitting (the floor first)
    ((0.50, 0.99, 0.80), (0.50, 0.60, 0.79)),   # t exactly 0.80: generalizing (t <= 0.80)
    ((0.99, 0.99, 0.78), (0.99, 0.60, 0.77)),   # t 0.78: underfitting (a floor of 0.75 or 0.70)
    ((0.50, 0.99, 0.82), (0.50, 0.60, 0.79)),   # t 0.82, v 0.79: generalizing (a floor of 0.85, v < 0.80)
    ((0.99, 0.99, 0.60), (0.99, 0.60, 0.58)),   # t 0.60: underfitting (t > 0.80)
)


def perturb_images(X, seed, amount=3):
    """uint8 images with independent random noise of -amount..amount grey levels per pixel (clipped).

    The fashionmnist accuracy test evaluates on these, so a submission that
    looks answers up by the exact bytes of the test images gets nothing from
    it, while any real model's accuracy barely moves."""
    rng = np.random.default_rng(seed)
    noisy = rng.integers(-amount, amount + 1, np.shape(X), dtype=np.int16)
    noisy += np.asarray(X, dtype=np.uint8)                     # in place: one int16 array in all
    np.clip(noisy, 0, 255, out=noisy)
    return noisy.astype(np.uint8)


class Relabelling:
    """The grader's own labelling of the classes for a training run: class c is trained as ``new[c]``,
    a derangement (no class keeps its number) drawn from ``seed``.  A train() that learns from the
    targets it is given scores as under the true labels; weights made elsewhere (embedded in the source,
    ignoring the data) predict the true numbers, which are all wrong here.  ``back`` maps what the trained
    model predicts to the true classes (for the per-class feedback)."""

    def __init__(self, seed, classes=10):
        rng = np.random.default_rng(seed)
        while True:
            new = rng.permutation(classes)
            if not np.any(new == np.arange(classes)):
                break
        self.new = new
        self.back = np.argsort(new)

    def labels(self, y):
        """The training targets the worker sees, for true labels ``y``."""
        return self.new[np.asarray(y)]

    def true_classes(self, predicted):
        """True class numbers of the trained model's predictions."""
        return self.back[np.asarray(predicted)]
