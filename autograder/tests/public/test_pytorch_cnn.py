"""Public tests of pytorch_cnn.py."""
import numpy as np
import pytest

from grader.kit import (CNN, as_array, as_labels, check_metrics, check_plot_and_judgement,
                        check_trained, fail, targets, tensor, tolerance)

PARAMETERS = 422_986


def expected_layers(num_classes=CNN.classes):
    """The layer sequence of assignment.CNN, as the worker describes layers: every hyperparameter the
    docstring states, those of its calls' defaults included (BatchNorm2d(c_out) is momentum 0.1)."""
    layers = []
    k, s = CNN.kernel, CNN.stride
    for c_in, c_out in zip(CNN.channels[:-1], CNN.channels[1:]):
        layers += [("Conv2d", {"in_channels": c_in, "out_channels": c_out, "kernel_size": [k, k],
                               "stride": [s, s], "padding": [k // 2, k // 2], "bias": True}),
                   ("ReLU", {}), ("MaxPool2d", {"kernel_size": [CNN.pool] * 2, "stride": [CNN.pool] * 2,
                                                "padding": [0, 0]}),
                   ("BatchNorm2d", {"num_features": c_out, "eps": CNN.batchnorm_eps,
                                    "momentum": CNN.batchnorm_momentum, "affine": True,
                                    "track_running_stats": True}),
                   ("Dropout", {"p": CNN.dropout})]
    layers += [("Flatten", {}), ("Linear", {"in_features": CNN.channels[-1], "out_features": CNN.hidden,
                                            "bias": True}),
               ("ReLU", {}), ("Linear", {"in_features": CNN.hidden, "out_features": num_classes, "bias": True})]
    return layers


def as_stated(kind, name, value, layer):
    """A layer's reported value in the form expected_layers states it: one number for both sides of a
    2-d size becomes a pair, and Conv2d's padding="same" (stride 1) is the padding that keeps the size."""
    if name in ("kernel_size", "stride", "padding") and isinstance(value, int) and not isinstance(value, bool):
        return [value, value]
    if kind == "Conv2d" and name == "padding" and value == "same":
        return [size // 2 for size in layer.get("kernel_size") or ()]
    return value


def same_value(got, want, tol):
    if isinstance(want, float):
        return isinstance(got, (int, float)) and not isinstance(got, bool) and \
            abs(got - want) <= tol["atol"] + tol["rtol"] * abs(want)
    return type(got) is type(want) and got == want


def images(n, seed=0):
    return np.random.default_rng(seed).random((n, 1, 28, 28)).astype(np.float32)


def test_architecture(pytorch_cnn, config):
    """PyTorchCNN: the exact layer sequence, hyperparameters and 422,986 parameters"""
    net = pytorch_cnn.new("PyTorchCNN")
    layers = net.layers("model")
    want = expected_layers()
    got_kinds = [layer["type"] for layer in layers]
    if got_kinds != [kind for kind, _ in want]:
        fail(f"self.model holds {got_kinds};\nexpected {[kind for kind, _ in want]}")
    for i, ((kind, attrs), layer) in enumerate(zip(want, layers)):
        for name, value in attrs.items():
            if not same_value(as_stated(kind, name, layer.get(name), layer), value,
                              tolerance(config, "hyperparameter")):
                fail(f"layer {i} ({kind}) has {name}={layer.get(name)!r}; expected {value!r} (the docstring states "
                     f"every layer's arguments; PyTorch's defaults are the ones it does not write out)")
    state = net.state_dict("model")
    count = sum(np.asarray(v).size for k, v in state.items()
                if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))
    if count != PARAMETERS:
        fail(f"self.model has {count:,} parameters; expected {PARAMETERS:,}")
    as_array(net.call("forward", tensor(images(2))), "forward on X of shape (2, 1, 28, 28)", shape=(2, 10))


def test_num_classes_and_predict(pytorch_cnn):
    """PyTorchCNN(num_classes=7): output size follows num_classes; predict gives integer labels"""
    net = pytorch_cnn.new("PyTorchCNN", num_classes=7)
    as_array(net.call("forward", tensor(images(3))), "forward with num_classes=7", shape=(3, 7))
    labels = as_labels(net.call("predict", tensor(images(5))), "predict", 5)
    if labels.min() < 0 or labels.max() >= 7:
        fail(f"predict returned labels {labels.tolist()}; expected values in 0..6")


@pytest.mark.calls_train
def test_train_plot_and_judgement(pytorch_cnn):
    """PyTorchCNN.train records metrics per epoch; the plot and the judgement work"""
    net = pytorch_cnn.new("PyTorchCNN")
    X = images(12)
    y = np.arange(12) % 10
    before = net.state_dict("model")
    net.call("train", tensor(X), targets(y, 10, torch=True), tensor(X[:4]),
             targets(y[:4], 10, torch=True), epochs=2, learning_rate=0.001)
    after = net.state_dict("model")
    check_trained(before, after, "train(...) on the first convolution", keys=["0.weight"])
    metrics = check_metrics(net.get("train_val_metrics"), 2, "PyTorchCNN")
    check_plot_and_judgement(pytorch_cnn, net, metrics, "pytorch_cnn_train_val_metrics.png")
