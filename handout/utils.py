"""Helpers shared by the assignment files: data loading, coloured printing,
a finite-difference gradient checker, and small conveniences.

You do not need to change anything in this file.

Fashion-MNIST is looked for, in this order, without touching the network:

1. the ``data_dir`` argument of :func:`load_mnist_f`, or else the directory in
   the environment variable ``FMNIST_DIR``;
2. ``./data/FashionMNIST/raw`` (torchvision's layout);
3. ``/usr/share/datasets/fashion-mnist`` (Debian/Ubuntu package
   ``dataset-fashion-mnist``).

Only if none of them holds the four files does it try torchvision's download
into ``./data``.  Each place may hold the files gzipped (``*.gz``) or unpacked.
"""
import functools
import gzip
import os
import sys

import numpy as np

#: Human-readable names of the ten Fashion-MNIST classes, indexed by label.
CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)

DATA_ENV_VAR = "FMNIST_DIR"
DEBIAN_DATA_DIR = "/usr/share/datasets/fashion-mnist"
LOCAL_DATA_DIR = os.path.join("data", "FashionMNIST", "raw")

# name stem -> (expected number of items, expected item shape)
_FILES = {
    "train-images-idx3-ubyte": (60000, (28, 28)),
    "train-labels-idx1-ubyte": (60000, ()),
    "t10k-images-idx3-ubyte": (10000, (28, 28)),
    "t10k-labels-idx1-ubyte": (10000, ()),
}


class DataError(RuntimeError):
    """Fashion-MNIST could not be found or a file of it is damaged."""


# ----------------------------------------------------------------------------
# Printing
# ----------------------------------------------------------------------------
def _colour(code, msg):
    if sys.stdout.isatty() and os.environ.get("NO_COLOR") is None:
        print(f"\033[{code}m{msg}\033[0m")
    else:
        print(msg)


def print_red(msg):
    """Print ``msg`` in red (plain text when not on a terminal)."""
    _colour(31, msg)


def print_green(msg):
    """Print ``msg`` in green (plain text when not on a terminal)."""
    _colour(32, msg)


def print_yellow(msg):
    """Print ``msg`` in yellow (plain text when not on a terminal)."""
    _colour(33, msg)


def print_blue(msg):
    """Print ``msg`` in blue (plain text when not on a terminal)."""
    _colour(34, msg)


def assert_greater_equal(actual, expected, msg):
    """Print a green PASS or a red FAIL line comparing ``actual >= expected``.

    Returns True when it passed.  It never raises, so a main block can go on.

    >>> assert_greater_equal(0.9, 0.8, "accuracy")
    PASS accuracy: 0.9000 >= 0.8000
    True
    """
    ok = float(actual) >= float(expected)
    line = f"{msg}: {float(actual):.4f} {'>=' if ok else '<'} {float(expected):.4f}"
    (print_green if ok else print_red)(("PASS " if ok else "FAIL ") + line)
    return ok


# ----------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------
def _read_idx(path, count, item_shape):
    """Read one IDX file (optionally gzipped) and check its header and size."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{path}: cannot read the file ({exc}). Delete it and install the data again.") from None
    ndim = 1 + len(item_shape)
    header = 4 + 4 * ndim
    if len(raw) < header or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or raw[3] != ndim:
        raise DataError(f"{path}: not an IDX file of unsigned bytes with {ndim} dimension(s). "
                        "Delete it and install the data again.")
    dims = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    if dims != (count,) + tuple(item_shape):
        raise DataError(f"{path}: holds shape {dims}, expected {(count,) + tuple(item_shape)}.")
    body = np.frombuffer(raw, dtype=np.uint8, offset=header)
    if body.size != int(np.prod(dims)):
        raise DataError(f"{path}: truncated: {body.size} bytes of data, expected {int(np.prod(dims))}. "
                        "Delete it and install the data again.")
    return body.reshape(dims).copy()


def _find_in(directory):
    """Paths of the four files in ``directory`` (gz or unpacked), or None."""
    found = {}
    for stem in _FILES:
        for name in (stem, stem + ".gz"):
            path = os.path.join(directory, name)
            if os.path.isfile(path):
                found[stem] = path
                break
        else:
            return None
    return found


def candidate_dirs(data_dir=None):
    """The directories searched for Fashion-MNIST, in order."""
    dirs = []
    explicit = data_dir or os.environ.get(DATA_ENV_VAR)
    if explicit:
        dirs += [explicit, os.path.join(explicit, "FashionMNIST", "raw")]
    dirs += [LOCAL_DATA_DIR, DEBIAN_DATA_DIR]
    return dirs


def _download(root="data"):
    try:
        from torchvision.datasets import FashionMNIST
        FashionMNIST(root, train=True, download=True)
        FashionMNIST(root, train=False, download=True)
    except Exception as exc:  # network down, torchvision missing, ...
        return f"{type(exc).__name__}: {exc}"
    return None


def find_fashion_mnist(data_dir=None, allow_download=True):
    """Return a dict {file stem: path} of the four Fashion-MNIST files."""
    dirs = candidate_dirs(data_dir)
    for d in dirs:
        found = _find_in(d)
        if found:
            return found
    problem = "downloading was not allowed"
    if allow_download and not os.environ.get("FMNIST_NO_DOWNLOAD"):
        problem = _download()
        found = _find_in(LOCAL_DATA_DIR)
        if found:
            return found
    looked = "\n".join(f"  - {os.path.abspath(d)}" for d in dirs)
    raise DataError(
        "Fashion-MNIST was not found. Looked in:\n" + looked +
        f"\nand the download into ./data failed ({problem}).\n"
        "Install it with one of:\n"
        "  sudo apt-get install dataset-fashion-mnist      (Debian/Ubuntu)\n"
        f"  set {DATA_ENV_VAR}=<folder with the four *-ubyte(.gz) files>\n"
        "  python -c \"from torchvision.datasets import FashionMNIST as F; "
        "F('data', download=True); F('data', train=False, download=True)\"")


def load_mnist_f(return_tensor=False, data_dir=None, allow_download=True):
    """Load Fashion-MNIST.

    Returns ``(X_train, y_train, X_test, y_test)``:
    X_train uint8 (60000, 28, 28), y_train int64 (60000,),
    X_test uint8 (10000, 28, 28), y_test int64 (10000,); labels are 0..9
    (see ``CLASS_NAMES``).  With ``return_tensor=True`` the four are torch
    tensors of the same dtypes and shapes.
    """
    paths = find_fashion_mnist(data_dir, allow_download)
    arrays = {}
    for stem, (count, shape) in _FILES.items():
        arrays[stem] = _read_idx(paths[stem], count, shape)
    for stem in ("train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"):
        if arrays[stem].max() > 9:
            raise DataError(f"{paths[stem]}: labels outside 0..9. Delete it and install the data again.")
        arrays[stem] = arrays[stem].astype(np.int64)
    out = (arrays["train-images-idx3-ubyte"], arrays["train-labels-idx1-ubyte"],
           arrays["t10k-images-idx3-ubyte"], arrays["t10k-labels-idx1-ubyte"])
    if return_tensor:
        import torch
        out = tuple(torch.from_numpy(a) for a in out)
    return out


def one_hot(labels, num_classes=10, dtype=np.float64):
    """Integer labels (N,) -> one-hot array (N, num_classes) of ``dtype``.

    >>> one_hot(np.array([2, 0]), 3)
    array([[0., 0., 1.],
           [1., 0., 0.]])
    """
    labels = np.asarray(labels)
    out = np.zeros((labels.shape[0], num_classes), dtype=dtype)
    out[np.arange(labels.shape[0]), labels] = 1
    return out


def pick_device():
    """'cuda' or 'mps' when available, else 'cpu'."""
    import torch
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


# ----------------------------------------------------------------------------
# nn.Module subclasses with a train(...) of their own
# ----------------------------------------------------------------------------
def keeps_module_modes(train_method):
    """Decorator for a ``train(X_train, ...)`` method on an ``nn.Module``.

    The assignment's classes define ``train(X_train, y_train, ...)``, which
    hides ``nn.Module.train(mode=True)``; ``model.eval()`` and
    ``model.train(False)`` would then call the training loop.  With this
    decorator, ``model.train()``, ``model.train(True/False)`` and
    ``model.eval()`` switch modes as usual, and every other call trains.
    """
    import torch.nn as nn

    @functools.wraps(train_method)
    def train(self, *args, **kwargs):
        if not kwargs and (not args or (len(args) == 1 and isinstance(args[0], bool))):
            return nn.Module.train(self, *args)
        if set(kwargs) == {"mode"} and not args:
            return nn.Module.train(self, **kwargs)
        return train_method(self, *args, **kwargs)

    return train


# ----------------------------------------------------------------------------
# Finite-difference gradient check for NumpyANN
# ----------------------------------------------------------------------------
def numerical_gradient(f, x, h=1e-5):
    """Central-difference gradient of the scalar function ``f()`` w.r.t. the
    array ``x``, which ``f`` reads and which is perturbed in place.

    >>> x = np.array([1.0, 2.0])
    >>> np.round(numerical_gradient(lambda: float((x ** 2).sum()), x), 4)
    array([2., 4.])
    """
    grad = np.zeros_like(x, dtype=np.float64)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + h
        plus = f()
        x[i] = old - h
        minus = f()
        x[i] = old
        grad[i] = (plus - minus) / (2 * h)
    return grad


def gradient_check(model, X, y_true, h=1e-5):
    """Compare ``model._backward`` with finite differences of the loss.

    ``model`` is a small NumpyANN; X float64 (N, input_size); y_true one-hot
    float64 (N, output_size).  ``_backward`` applies ``p -= lr * grad``, so the
    analytic gradient is read off a copy with lr = 1 as ``old - new``.
    Returns {"W1": rel_err, "b1": ..., "W2": ..., "b2": ...}; errors below
    about 1e-6 mean the gradients are right.  A larger error can also come
    from a pre-activation within ``h`` of ReLU's kink at 0: try a smaller
    ``h`` or other inputs before you hunt for a bug.
    """
    import copy
    names = ("W1", "b1", "W2", "b2")
    probe = copy.deepcopy(model)
    probe.lr = 1.0
    before = {n: getattr(probe, n).copy() for n in names}
    probe._forward(X, training=True)
    probe._backward(X, y_true)
    errors = {}
    for n in names:
        analytic = before[n] - getattr(probe, n)
        param = getattr(model, n)

        def loss():
            return float(model._cross_entropy(model._forward(X, training=False), y_true))

        numeric = numerical_gradient(loss, param, h)
        scale = max(np.abs(analytic).max(), np.abs(numeric).max(), 1e-12)
        errors[n] = float(np.abs(analytic - numeric).max() / scale)
    return errors


# ----------------------------------------------------------------------------
# Main-block helpers
# ----------------------------------------------------------------------------
STUB_MARK = "# >>> YOUR CODE HERE >>>"


def unimplemented_functions(path):
    """Names of the functions in ``path`` whose code block is still a stub."""
    names = []
    with open(path, encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    for i, line in enumerate(lines):
        if line.strip() == STUB_MARK and i + 1 < len(lines):
            nxt = lines[i + 1].strip()
            if nxt.startswith("raise NotImplementedError("):
                names.append(nxt.split("(", 1)[1].split(":", 1)[0].strip("\"'"))
    return names


def exit_if_unimplemented(path):
    """Print a friendly line per unimplemented function and exit with 1."""
    names = unimplemented_functions(path)
    if names:
        for name in names:
            print_yellow(f"Not implemented yet: {name}")
        print_red(f"{os.path.basename(path)}: fill in the {len(names)} block(s) marked "
                  "'YOUR CODE HERE', then run this file again.")
        sys.exit(1)


def run_doctests(module):
    """Run the doctests of ``module``; exit with 1 when one fails.  An example that shows no output
    may print (your own progress lines while training); one that shows output must match it."""
    import doctest

    class PrintsAllowed(doctest.OutputChecker):
        def check_output(self, want, got, optionflags):
            return want == "" or super().check_output(want, got, optionflags)

    runner = doctest.DocTestRunner(checker=PrintsAllowed(), verbose=False,
                                   optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in doctest.DocTestFinder(exclude_empty=True).find(module, module.__name__):
        runner.run(test)
    result = runner.summarize(verbose=False)
    if result.failed:
        print_red(f"{result.failed} of {result.attempted} doctest example(s) failed.")
        sys.exit(1)
    print_green(f"All {result.attempted} doctest examples passed.")
