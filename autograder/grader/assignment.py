"""The assignment, stated once: the files students submit, what each holds, and the CNN's shape.

Everything else reads this table: the grader (which uploads it copies, which worker grades
what, test numbering), the tools (handout generator, zip builder, runners, benchmarks) and
the self-tests.  tests/test_contract.py checks ``functions`` against the student blocks of
solution/.

The table below is this course's, whose folder (``FOLDER``: config.toml, contract.toml and
tests/) is autograder/.  Another assignment is a folder of its own holding the same and its table
in assignment.toml (``read_table``; autograder/README.md, "Next term's assignment"): the
environment variable NNAG_ASSIGNMENT=<folder>, or ``grader.run --assignment <folder>``, chooses it
before any grader module reads the names below.  No grader code names another assignment's files.

    python -m grader.assignment      prints the graded file stems, one per line (for make)
"""
import os
import tomllib
from types import MappingProxyType
from typing import NamedTuple


class File(NamedTuple):
    stem: str
    functions: tuple      # "<Class>.<method>" or "<function>": every block a student fills in
    time_limit_key: str = None    # the config time_limits key that bounds its full-data training or evaluation calls
    figures: MappingProxyType = MappingProxyType({})   # PNG name -> what it must show (graded by hand)
    weights: tuple = ()   # other files it ships: trained weights

    @property
    def code(self):
        return f"{self.stem}.py"

    @property
    def uploads(self):
        """Every name of this file's that the grader copies from an upload; the code first."""
        return (self.code, *self.weights, *self.figures)


COURSE_FOLDER = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))    # autograder/
FOLDER_VARIABLE = "NNAG_ASSIGNMENT"
TABLE_NAME = "assignment.toml"        # another assignment's table, in its folder
COURSE_FILES = (
    File("numpy_ann",
         ("NumpyANN._relu", "NumpyANN._relu_grad", "NumpyANN._softmax", "NumpyANN._cross_entropy",
          "NumpyANN._forward", "NumpyANN._backward", "NumpyANN.train", "NumpyANN.predict", "NumpyANN.accuracy"),
         time_limit_key="train_numpy_ann"),
    File("pytorch_ann",
         ("PyTorchANN.forward", "PyTorchANN.train", "PyTorchANN.predict", "PyTorchANN.accuracy",
          "PyTorchANN.plot_train_val_metrics", "PyTorchANN.report_my_judgement"),
         time_limit_key="train_pytorch_ann",
         figures=MappingProxyType({"pytorch_ann_train_val_metrics.png":
                                   "the training and validation loss and accuracy per epoch"})),
    File("pytorch_cnn",
         ("PyTorchCNN.__init__", "PyTorchCNN.forward", "PyTorchCNN.train", "PyTorchCNN.predict",
          "PyTorchCNN.accuracy", "PyTorchCNN.plot_train_val_metrics", "PyTorchCNN.report_my_judgement"),
         time_limit_key="train_pytorch_cnn",
         figures=MappingProxyType({"pytorch_cnn_train_val_metrics.png":
                                   "the training and validation loss and accuracy per epoch"})),
    File("fashionmnist",
         ("FashionNet.__init__", "count_parameters", "train_model", "predict", "plot_training_loss",
          "save_example_images"),
         time_limit_key="evaluate_fashionmnist",
         weights=("fmnist.pth",),
         figures=MappingProxyType({
             "fmnist_training_loss.png": "the training-loss plot of your model",
             "fmnist_misclassified.png": "one misclassified test image, titled with its predicted and true class "
                                         "names",
             "fmnist_correct.png": "one correctly classified test image, titled with its predicted and true class "
                                   "names",
         })),
)
# the handout's shared helper module (data loading) copied beside every graded file; students do not submit it
COURSE_UTILS = "utils.py"


class AssignmentError(ValueError):
    """An assignment folder's table cannot be used; the message names the file and the entry."""


FILE_KEYS = MappingProxyType({"stem": str, "functions": list, "time_limit_key": str, "weights": list,
                              "figures": dict})


def _file_entry(entry, where):
    """A File from one [[file]] table of assignment.toml."""
    if not isinstance(entry, dict):
        raise AssignmentError(f"{where}: each [[file]] must be a table")
    for key, value in entry.items():
        if key not in FILE_KEYS:
            raise AssignmentError(f"{where}: unknown key {key!r} (known: {', '.join(FILE_KEYS)})")
        if not isinstance(value, FILE_KEYS[key]):
            raise AssignmentError(f"{where}: {key} must be a {FILE_KEYS[key].__name__}")
    stem, functions = entry.get("stem"), entry.get("functions")
    if not stem or not stem.isidentifier():
        raise AssignmentError(f"{where}: stem must name a Python module (the file <stem>.py)")
    if not functions or not all(isinstance(f, str) and f for f in functions):
        raise AssignmentError(f"{where}: functions must list the functions with a student block")
    names = [*entry.get("weights", []), *entry.get("figures", {})]
    if not all(isinstance(n, str) and n and os.path.basename(n) == n for n in names) \
            or not all(isinstance(v, str) for v in entry.get("figures", {}).values()):
        raise AssignmentError(f"{where}: weights and figures are plain file names (figures: name = what it shows)")
    return File(stem, tuple(functions), entry.get("time_limit_key"),
                MappingProxyType(dict(entry.get("figures", {}))), tuple(entry.get("weights", ())))


def read_table(folder):
    """(files, helper module or None) of the assignment in ``folder``: this course's table for COURSE_FOLDER,
    else the [[file]] tables of ``folder``/assignment.toml (no helper module).  AssignmentError says what is
    wrong."""
    if os.path.realpath(folder) == os.path.realpath(COURSE_FOLDER):
        return COURSE_FILES, COURSE_UTILS
    path = os.path.join(folder, TABLE_NAME)
    try:
        with open(path, "rb") as fh:
            table = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise AssignmentError(f"{path}: cannot read the assignment's table ({exc})") from None
    unknown = sorted(set(table) - {"file"})
    if unknown or not isinstance(table.get("file"), list) or not table["file"]:
        raise AssignmentError(f"{path}: the table holds [[file]] tables only, one at least"
                              + (f" (unknown: {', '.join(unknown)})" if unknown else ""))
    files = tuple(_file_entry(entry, f"{path}: [[file]] #{i + 1}") for i, entry in enumerate(table["file"]))
    if len({f.stem for f in files}) != len(files):
        raise AssignmentError(f"{path}: a stem is listed twice")
    return files, None


def chosen_folder(environ=None):
    """The assignment's folder: NNAG_ASSIGNMENT (relative to the working folder) when set in ``environ``
    (os.environ by default), else the course's."""
    value = (os.environ if environ is None else environ).get(FOLDER_VARIABLE)
    if not value or os.path.realpath(value) == os.path.realpath(COURSE_FOLDER):
        return COURSE_FOLDER
    return os.path.abspath(value)


FOLDER = chosen_folder()
FILES, UTILS = read_table(FOLDER)      # UTILS: the helper module copied beside every graded file, or None
BY_STEM = MappingProxyType({f.stem: f for f in FILES})
STEMS = tuple(BY_STEM)
HANDOUT_FILES = (*((UTILS,) if UTILS else ()), *(f.code for f in FILES))
UPLOADS = frozenset(name for f in FILES for name in f.uploads)
FIGURES = MappingProxyType({name: what for f in FILES for name, what in f.figures.items()})


class CNN:
    """The PyTorchCNN architecture of pytorch_cnn.py's docstring: ``blocks`` x [Conv2d(3x3, stride 1, padding 1),
    ReLU, MaxPool2d(2), BatchNorm2d, Dropout(dropout)] on the channels below, then Flatten,
    Linear(channels[-1], hidden), ReLU, Linear(hidden, classes).  The docstring's BatchNorm2d(c_out) is
    PyTorch's defaults: eps 1e-5, momentum 0.1, affine, running statistics (not Keras's momentum 0.99)."""
    channels = (1, 32, 64, 128, 256)
    kernel = 3
    stride = 1
    pool = 2
    batchnorm_eps = 1e-5
    batchnorm_momentum = 0.1
    dropout = 0.3
    hidden = 128
    classes = 10
    block = ("Conv2d", "ReLU", "MaxPool2d", "BatchNorm2d", "Dropout")   # state_dict index = 5 * block + position


def file_of(stem):
    """The table's entry for ``stem``; KeyError names the valid stems."""
    try:
        return BY_STEM[stem]
    except KeyError:
        raise KeyError(f"{stem!r} is not a graded file; the files are {', '.join(STEMS)}") from None


if __name__ == "__main__":
    print("\n".join(STEMS))
