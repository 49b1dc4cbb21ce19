"""utils.py: offline data loading with checks, gradient checker, nn.Module modes."""
import gzip
import os
import shutil
import subprocess

import numpy as np
import pytest

from conftest import PYTHON, SOLUTION


@pytest.fixture
def utils(solution_path):
    import utils
    return utils


def test_load_mnist_f_shapes_dtypes_and_labels(utils):
    X_train, y_train, X_test, y_test = utils.load_mnist_f(allow_download=False)
    assert X_train.shape == (60000, 28, 28) and X_train.dtype == np.uint8
    assert X_test.shape == (10000, 28, 28) and X_test.dtype == np.uint8
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    assert np.issubdtype(y_train.dtype, np.integer)
    assert set(np.unique(y_train)) == set(range(10)) == set(np.unique(y_test))
    assert len(utils.CLASS_NAMES) == 10


def test_load_mnist_f_returns_tensors(utils):
    import torch
    X_train, y_train, X_test, y_test = utils.load_mnist_f(return_tensor=True, allow_download=False)
    assert isinstance(X_train, torch.Tensor) and X_train.dtype == torch.uint8
    assert y_test.dtype == torch.int64 and tuple(X_test.shape) == (10000, 28, 28)


def _copy_data(utils, dest, unpack=False):
    paths = utils.find_fashion_mnist(allow_download=False)
    for stem, path in paths.items():
        if unpack and path.endswith(".gz"):
            with gzip.open(path) as src, open(dest / stem, "wb") as out:
                shutil.copyfileobj(src, out)
        else:
            shutil.copy(path, dest / os.path.basename(path))
    return paths


def test_explicit_directory_comes_first_and_unpacked_files_work(utils, tmp_path, monkeypatch):
    _copy_data(utils, tmp_path, unpack=True)
    found = utils.find_fashion_mnist(str(tmp_path), allow_download=False)
    assert all(p.startswith(str(tmp_path)) for p in found.values())
    monkeypatch.setenv(utils.DATA_ENV_VAR, str(tmp_path))
    assert utils.find_fashion_mnist(allow_download=False) == found
    assert utils.load_mnist_f(allow_download=False)[3].shape == (10000,)


def test_truncated_file_names_the_file(utils, tmp_path):
    _copy_data(utils, tmp_path, unpack=True)
    target = tmp_path / "t10k-images-idx3-ubyte"
    target.write_bytes(target.read_bytes()[:5000])
    with pytest.raises(utils.DataError, match="t10k-images-idx3-ubyte: truncated"):
        utils.load_mnist_f(data_dir=str(tmp_path), allow_download=False)


def test_corrupt_gzip_names_the_file(utils, tmp_path):
    _copy_data(utils, tmp_path, unpack=True)
    (tmp_path / "train-labels-idx1-ubyte").unlink()
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(b"this is not gzip data")
    with pytest.raises(utils.DataError, match="train-labels-idx1-ubyte.gz: cannot read"):
        utils.load_mnist_f(data_dir=str(tmp_path), allow_download=False)


def test_missing_data_lists_every_place_it_looked(utils, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(utils, "DEBIAN_DATA_DIR", str(tmp_path / "no-debian"))
    with pytest.raises(utils.DataError) as info:
        utils.load_mnist_f(data_dir=str(tmp_path / "nowhere"), allow_download=False)
    text = str(info.value)
    for place in ("nowhere", "no-debian", os.path.join("data", "FashionMNIST", "raw"), "apt-get install"):
        assert place in text


def test_gradient_check_accepts_the_reference_and_catches_a_bug(solution_path):
    import utils
    from numpy_ann import NumpyANN
    rng = np.random.default_rng(0)
    X = rng.random((6, 5))
    y = np.eye(3)[rng.integers(0, 3, 6)]
    model = NumpyANN(5, 4, 3, 0.1)
    model.W1 = rng.normal(0, 0.5, (5, 4))   # pre-activations far from ReLU's kink at 0
    model.W2 = rng.normal(0, 0.5, (4, 3))
    assert max(utils.gradient_check(model, X, y).values()) < 1e-6

    class NoMeanANN(NumpyANN):  # forgets to divide by the batch size
        def _backward(self, X, y_true):
            dz2 = self.a2 - y_true
            dz1 = (dz2 @ self.W2.T) * (self.z1 > 0)
            self.W2 -= self.lr * self.a1.T @ dz2
            self.b2 -= self.lr * dz2.sum(axis=0, keepdims=True)
            self.W1 -= self.lr * X.T @ dz1
            self.b1 -= self.lr * dz1.sum(axis=0, keepdims=True)

    buggy = NoMeanANN(5, 4, 3, 0.1)
    buggy.W1, buggy.W2 = model.W1.copy(), model.W2.copy()
    assert max(utils.gradient_check(buggy, X, y).values()) > 1e-3


@pytest.mark.parametrize("cls_args", [("pytorch_ann", "PyTorchANN", (4, 3, 2)), ("pytorch_cnn", "PyTorchCNN", ())])
def test_eval_and_train_bool_switch_modes_despite_the_train_method(solution_path, cls_args):
    import importlib
    module, cls, args = cls_args
    model = getattr(importlib.import_module(module), cls)(*args)
    assert model.eval() is model and not model.training and not model.model.training
    assert model.train(True) is model and model.training and model.model.training
    model.train(False)
    assert not model.model.training
    model.train()
    assert model.model.training
    model.train(mode=False)
    assert not model.model.training


def test_solution_doctests_pass():
    proc = subprocess.run([PYTHON, "-m", "doctest", "utils.py", "numpy_ann.py", "pytorch_ann.py",
                           "pytorch_cnn.py", "fashionmnist.py"], cwd=SOLUTION, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:]


def test_run_doctests_lets_an_example_print_but_not_answer_wrongly(tmp_path):
    """A student who prints progress in train() can still run their file: an example that shows no output
    may print; an example that shows output must still match it."""
    def run(body):
        (tmp_path / "student.py").write_text(
            "def train(n):\n"
            '    """\n'
            "    >>> train(2)\n"
            f"    >>> 1 + 1\n    {body}\n"
            '    """\n'
            "    for epoch in range(n):\n"
            "        print(f'epoch {epoch}: loss 0.5')\n")
        code = ("import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]; import student, utils; "
                "utils.run_doctests(student)")
        return subprocess.run([PYTHON, "-c", code, str(tmp_path), SOLUTION], capture_output=True, text=True,
                              timeout=120)
    passed, failed = run("2"), run("3")
    assert passed.returncode == 0 and "All 2 doctest examples passed" in passed.stdout, passed.stdout + passed.stderr
    assert failed.returncode == 1 and "1 of 2 doctest example(s) failed" in failed.stdout, failed.stdout
