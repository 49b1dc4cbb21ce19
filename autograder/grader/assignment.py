"""The assignment, stated once: the files students submit, what each holds, and the CNN's shape.

Everything else reads this table: the grader (which uploads it copies, which worker grades
what, test numbering), the tools (handout generator, zip builder, runners, benchmarks) and
the self-tests.  tests/test_contract.py checks ``functions`` against the student blocks of
solution/.

    python -m grader.assignment      prints the graded file stems, one per line (for make)
"""
from types import MappingProxyType
from typing import NamedTuple


class File(NamedTuple):
    stem: str
    functions: tuple      # "<Class>.<method>" or "<function>": every block a student fills in
    trains: str           # the config time_limits key that bounds its full-data training or evaluation calls
    figures: MappingProxyType = MappingProxyType({})   # PNG name -> what it must show (graded by hand)
    weights: tuple = ()   # other files it ships: trained weights

    @property
    def code(self):
        return f"{self.stem}.py"

    @property
    def uploads(self):
        """Every name of this file's that the grader copies from an upload; the code first."""
        return (self.code, *self.weights, *self.figures)


FILES = (
    File("numpy_ann",
         ("NumpyANN._relu", "NumpyANN._relu_grad", "NumpyANN._softmax", "NumpyANN._cross_entropy",
          "NumpyANN._forward", "NumpyANN._backward", "NumpyANN.train", "NumpyANN.predict", "NumpyANN.accuracy"),
         trains="train_numpy_ann"),
    File("pytorch_ann",
         ("PyTorchANN.forward", "PyTorchANN.train", "PyTorchANN.predict", "PyTorchANN.accuracy",
          "PyTorchANN.plot_train_val_metrics", "PyTorchANN.report_my_judgement"),
         trains="train_pytorch_ann",
         figures=MappingProxyType({"pytorch_ann_train_val_metrics.png":
                                   "the training and validation loss and accuracy per epoch"})),
    File("pytorch_cnn",
         ("PyTorchCNN.__init__", "PyTorchCNN.forward", "PyTorchCNN.train", "PyTorchCNN.predict",
          "PyTorchCNN.accuracy", "PyTorchCNN.plot_train_val_metrics", "PyTorchCNN.report_my_judgement"),
         trains="train_pytorch_cnn",
         figures=MappingProxyType({"pytorch_cnn_train_val_metrics.png":
                                   "the training and validation loss and accuracy per epoch"})),
    File("fashionmnist",
         ("FashionNet.__init__", "count_parameters", "train_model", "predict", "plot_training_loss",
          "save_example_images"),
         trains="evaluate_fashionmnist",
         weights=("fmnist.pth",),
         figures=MappingProxyType({
             "fmnist_training_loss.png": "the training-loss plot of your model",
             "fmnist_misclassified.png": "one misclassified test image, titled with its predicted and true class "
                                         "names",
             "fmnist_correct.png": "one correctly classified test image, titled with its predicted and true class "
                                   "names",
         })),
)
BY_STEM = MappingProxyType({f.stem: f for f in FILES})
STEMS = tuple(BY_STEM)
# the handout's shared helper module (data loading); students do not submit it
UTILS = "utils.py"
HANDOUT_FILES = (UTILS, *(f.code for f in FILES))
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
