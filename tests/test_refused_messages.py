"""What a student reads when the worker refuses an action (issue 30, items 3 and 4).

Each kind of refused action (a network connection, writing outside the file's folder, starting a
program, reading a protected file) is named in plain words with what to do, once done at import and
once inside a method; a file that works long at import is told so; plt.show() neither blocks nor
fails.  Nothing of the grader's inner workings (paths, the instructor report's lines) reaches the
student.  Three gradings of tiny submissions: every case of a kind shares a grading with the others.
"""
import os
import sys

import pytest

from conftest import PYTHON, ROOT, SOLUTION

sys.path.insert(0, os.path.join(ROOT, "autograder"))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from grader import results as results_mod  # noqa: E402
from grade_folder import grade_folder  # noqa: E402

LABELS = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"
GRADER_SOURCE = os.path.join(ROOT, "autograder", "grader", "session.py")
MAIN = 'under `if __name__ == "__main__":`'

# one action of each kind, as honest (if misguided) scripts do them
NETWORK = ("import urllib.request\n"
           "urllib.request.urlretrieve('http://fashion-mnist.example.org/t10k-labels-idx1-ubyte.gz', 'labels.gz')\n")
WRITE = "open('../loss.png', 'wb').write(b'png')\n"          # the grader's work folder: its path is not told
PROCESS = "import subprocess\nsubprocess.run(['nvidia-smi'], check=True)\n"
READ = f"open({LABELS!r}, 'rb').read()\n"
READ_GRADER = f"open({GRADER_SOURCE!r}).read()\n"


def stub(cls, body):
    """A file whose class ``cls`` raises nothing but what ``body`` does at import."""
    return f"{body}\n\nclass {cls}:\n    pass\n"


def method(name, body, result):
    """``NumpyANN.<name>`` replaced by one that does ``body``, then returns ``result``."""
    lines = "".join(f"    {line}\n" for line in body.strip().splitlines())
    return f"\n\ndef _{name}(self, *args, **kwargs):\n{lines}    return {result}\n\n\nNumpyANN.{name} = _{name}\n"


def grade(tmp_path, files, *args):
    sub = tmp_path / "sub"
    sub.mkdir()
    for name, text in files.items():
        (sub / name).write_text(text)
    result, _ = grade_folder(sub, tmp_path / "results.json", "--files", ",".join(n[:-3] for n in files),
                             "--tests", "public", *args, python=PYTHON, timeout=300)
    assert results_mod.validate(result) == [], results_mod.validate(result)
    return result


def outputs(result, stem):
    """{test name: output} of ``stem``'s tests, as the student sees them."""
    return {t["name"]: t["output"] for t in result["tests"] if t["tags"][0] == stem and t["visibility"] != "hidden"}


def student_text(result):
    return result["output"] + "".join(t["output"] for t in result["tests"] if t["visibility"] != "hidden")


def assert_nothing_hidden(result):
    """Nothing of the instructor report's lines, the grader's folders or its layers; the student's own code lines
    (which name what the student wrote) may show."""
    text = student_text(result)
    for hidden in ("refused:", "resource limit:", "[network]", "[write]", "[process]", "[read]", "socket.getaddrinfo",
                   "subprocess.Popen", "outside the worker's folders", os.path.dirname(GRADER_SOURCE), "/tmp/nnag-",
                   "SIGSYS", "seccomp", "audit", "Landlock"):
        assert hidden not in text, (hidden, text)


@pytest.fixture(scope="module")
def at_import(tmp_path_factory):
    """Each graded file does one kind at import (small stubs: no torch is loaded)."""
    return grade(tmp_path_factory.mktemp("import"), {
        "numpy_ann.py": stub("NumpyANN", NETWORK),
        "pytorch_ann.py": stub("PyTorchANN", WRITE),
        "pytorch_cnn.py": stub("PyTorchCNN", PROCESS),
        "fashionmnist.py": stub("FashionNet", f"try:\n    {READ_GRADER}except OSError:\n    pass\n" + READ),
    }, "--no-training")


@pytest.fixture(scope="module")
def in_methods(tmp_path_factory):
    """The reference numpy_ann.py with four methods that each do one kind (none of them on the way of
    predict), and plt.show() at import and in accuracy (which still answers right)."""
    text = open(os.path.join(SOLUTION, "numpy_ann.py")).read()
    text += "\nimport matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()\n"
    text += method("train", NETWORK, "None")
    text += method("_relu_grad", WRITE, "args[0]")
    text += method("_backward", PROCESS, "None")
    text += method("_cross_entropy", READ, "0.0")
    text += ("\n_accuracy = NumpyANN.accuracy\n\n\ndef _shown(self, *args):\n    plt.figure()\n    plt.show()\n"
             "    plt.show(block=True)\n    return _accuracy(self, *args)\n\n\nNumpyANN.accuracy = _shown\n")
    tmp = tmp_path_factory.mktemp("methods")
    # (the public train test is quick); PyTorchANN() retries its download until the call's time limit
    return grade(tmp, {"numpy_ann.py": text, "pytorch_ann.py": stub("PyTorchANN", "") + RETRIES},
                 "--set", "time_limits.call=3", "--set", "time_limits.timeouts_per_file=1")


def test_each_kind_at_import_is_named_with_what_to_do(at_import):
    expected = {"numpy_ann": ("numpy_ann.py tried to open a network connection while being imported (for example "
                              "a data set download). The grader has no network: load data only inside `main()` or "
                              + MAIN),
                "pytorch_ann": "pytorch_ann.py tried to write a file outside its own folder while being imported",
                "pytorch_cnn": ("pytorch_cnn.py tried to start another program while being imported (for example "
                                "`pip install`, `nvidia-smi` or a shell command). The grader runs only your Python "
                                "code"),
                "fashionmnist": ("fashionmnist.py tried to read a file the grader protects while being imported "
                                 "(for example the data set's test files). Load data only inside `main()` or "
                                 + MAIN)}
    for stem, sentence in expected.items():
        tests = outputs(at_import, stem)
        assert tests, stem
        imports = {name: text for name, text in tests.items() if "importing" in text}
        assert imports, tests          # (a test of fmnist.pth alone does not import the file)
        for name, text in imports.items():
            assert text.startswith(f"importing {stem}.py failed: {sentence}"), (stem, name, text)
            assert f"Every test of {stem}.py fails with this message." in text
    assert "Save files only in the folder your code runs in" in next(iter(outputs(at_import, "pytorch_ann").values()))
    assert_nothing_hidden(at_import)


def test_each_kind_in_a_method_is_named_with_what_to_do(in_methods):
    tests = outputs(in_methods, "numpy_ann")
    expected = {"NumpyANN.train:": ("numpy_ann.py tried to open a network connection during NumpyANN.train (for "
                                    "example a data set download). The grader has no network: use the data the "
                                    "grader passes to your functions"),
                "NumpyANN._relu_grad ": ("numpy_ann.py tried to write a file outside its own folder during "
                                         "NumpyANN._relu_grad (for example by an absolute path or `../`). Save files "
                                         "only in the folder your code runs in"),
                "NumpyANN._backward:": ("numpy_ann.py tried to start another program during NumpyANN._backward (for "
                                        "example `pip install`, `nvidia-smi` or a shell command). The grader runs "
                                        "only your Python code: install nothing"),
                "NumpyANN._cross_entropy ": ("numpy_ann.py tried to read a file the grader protects during "
                                             "NumpyANN._cross_entropy (for example the data set's test files). Use "
                                             "only the data the grader passes to your functions")}
    for name, sentence in expected.items():
        found = [text for test, text in tests.items() if test.startswith(name)]
        assert len(found) == 1 and found[0].startswith(sentence), (name, found or tests)
        assert "The error it led to: NumpyANN." in found[0], found[0]
    assert_nothing_hidden(in_methods)


def test_plt_show_neither_blocks_nor_fails(in_methods):
    """plt.show() at import and twice in accuracy (one with block=True): the file imports, and the accuracy
    test passes within its time limit (the worker's backend is non-interactive)."""
    accuracy = [t for t in in_methods["tests"] if t["tags"][0] == "numpy_ann" and "accuracy" in t["name"]]
    assert accuracy and all(t["score"] == t["max_score"] > 0 for t in accuracy), accuracy
    assert not any("importing numpy_ann.py failed" in t["output"] for t in in_methods["tests"])


def test_a_refusal_before_a_time_out_is_named(in_methods):
    """The refusal reaches the grader on the events channel only (no reply came): still named."""
    tests = outputs(in_methods, "pytorch_ann")
    assert tests
    for name, text in tests.items():
        assert text.startswith("pytorch_ann.py tried to open a network connection during PyTorchANN(...) (for "
                               "example a data set download)") or "ran out of time 1 times" in text, (name, text)
    named = [text for text in tests.values() if text.startswith("pytorch_ann.py tried")]
    assert named and "no answer within the time limit of 3 s" in named[0], tests
    assert_nothing_hidden(in_methods)


LONG_IMPORT = "import time\nfor epoch in range(100):\n    print(f'epoch {epoch}', flush=True)\n    time.sleep(1)\n"
RETRIES = ("\n    def __init__(self, *args, **kwargs):\n        import time, urllib.request\n"
           "        while True:\n            try:\n                urllib.request.urlopen('http://example.org/x.gz')\n"
           "            except OSError:\n                time.sleep(0.2)\n")
RAW_SOCKET = ("import ctypes, platform\n"
              "ctypes.CDLL(None).syscall({'x86_64': 41, 'aarch64': 198}[platform.machine()], 2, 1, 0)\n")


@pytest.fixture(scope="module")
def long_and_native(tmp_path_factory):
    """numpy_ann trains at the top level (past a short import limit); pytorch_ann opens a socket past Python;
    pytorch_cnn retries a download until the import's limit; fashionmnist opens a socket past Python after a
    refused download."""
    retry_at_import = ("import time, urllib.request\nwhile True:\n    try:\n"
                       "        urllib.request.urlopen('http://example.org/x.gz')\n    except OSError:\n"
                       "        time.sleep(0.2)\n")
    refused_then_raw = "try:\n    " + NETWORK.replace("\n", "\n    ") + "\nexcept OSError:\n    pass\n" + RAW_SOCKET
    return grade(tmp_path_factory.mktemp("long"), {"numpy_ann.py": stub("NumpyANN", LONG_IMPORT),
                                                   "pytorch_ann.py": stub("PyTorchANN", RAW_SOCKET),
                                                   "pytorch_cnn.py": stub("PyTorchCNN", retry_at_import),
                                                   "fashionmnist.py": stub("FashionNet", refused_then_raw)},
                 "--no-training", "--set", "time_limits.import=4")


def test_long_work_at_import_is_named(long_and_native):
    for name, text in outputs(long_and_native, "numpy_ann").items():
        assert text.startswith("importing numpy_ann.py failed: numpy_ann.py did long work while being imported "
                               "(for example training a model at the top level of the file) and was stopped after "
                               "the import's time limit of 4 s."), (name, text)
        assert MAIN in text and "epoch 2" in text, text          # what to do, and the end of its output
    assert_nothing_hidden(long_and_native)


@pytest.mark.skipif(sys.platform != "linux", reason="the seccomp filter is Linux's")
def test_a_blocked_call_without_a_named_refusal_stays_neutral(long_and_native):
    """A socket opened past Python (no refusal named): the neutral message, which still says what to do."""
    for name, text in outputs(long_and_native, "pytorch_ann").items():
        assert text.startswith("importing pytorch_ann.py failed: this file's tests stopped: the code tried an "
                               "action the grader does not allow, most likely a network connection"), (name, text)
        assert MAIN in text


@pytest.mark.skipif(sys.platform != "linux", reason="the seccomp filter is Linux's")
def test_a_refusal_before_the_worker_ends_is_named(long_and_native):
    """A download refused, then the import ran out of time (retries) or died of a socket opened past Python:
    the refusal, which came on the events channel only, is what the student reads."""
    for stem in ("pytorch_cnn", "fashionmnist"):
        imports = [text for text in outputs(long_and_native, stem).values() if "importing" in text]
        assert imports, stem
        for text in imports:
            assert text.startswith(f"importing {stem}.py failed: {stem}.py tried to open a network connection while "
                                   "being imported (for example a data set download)."), (stem, text)
            assert ("no answer within the time limit of 4 s" in text) == (stem == "pytorch_cnn"), text
    assert_nothing_hidden(long_and_native)
