"""Public tests of pytorch_ann.py."""
import numpy as np
import pytest

from grader.kit import (as_array, as_labels, assert_close, check_metrics,
                        check_plot_and_judgement, check_trained, fail, targets, tensor,
                        tolerance)



def logits_from_state(state, X):
    h = np.maximum(X @ state["0.weight"].T + state["0.bias"], 0)
    return h @ state["2.weight"].T + state["2.bias"]


def small_data(n=12, d=6, c=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, d)).astype(np.float32), rng.integers(0, c, n)


@pytest.mark.parametrize("sizes", [(784, 128, 10), (6, 5, 3)], ids=["784-128-10", "6-5-3"])
def test_architecture(pytorch_ann, sizes):
    """PyTorchANN: self.model is Linear, ReLU, Linear with the given sizes"""
    n_in, n_hidden, n_out = sizes
    net = pytorch_ann.new("PyTorchANN", n_in, n_hidden, n_out)
    layers = net.layers("model")
    kinds = [layer["type"] for layer in layers]
    if kinds != ["Linear", "ReLU", "Linear"]:
        fail(f"self.model holds {kinds}; expected ['Linear', 'ReLU', 'Linear']")
    dims = [(layers[0]["in_features"], layers[0]["out_features"]), (layers[2]["in_features"], layers[2]["out_features"])]
    if dims != [(n_in, n_hidden), (n_hidden, n_out)]:
        fail(f"the Linear layers map {dims}; expected {[(n_in, n_hidden), (n_hidden, n_out)]}")
    for name, value in (("input_size", n_in), ("hidden_size", n_hidden), ("output_size", n_out), ("seed", 42)):
        if net.get(name) != value:
            fail(f"PyTorchANN.{name} is {net.get(name)!r}; expected {value!r}")
    X, _ = small_data(4, n_in, n_out)
    as_array(net.call("forward", tensor(X)), "forward", shape=(4, n_out))


def test_forward_and_predict(pytorch_ann, config):
    """PyTorchANN.forward gives the logits; predict gives integer labels"""
    net = pytorch_ann.new("PyTorchANN", 6, 5, 3)
    X, _ = small_data()
    state = {k: np.asarray(v, dtype=np.float64) for k, v in net.state_dict("model").items()}
    logits = logits_from_state(state, X.astype(np.float64))
    assert_close(net.call("forward", tensor(X)), logits, "forward", "X float32 of shape (12, 6)",
                 **tolerance(config, "float32_forward"))
    labels = as_labels(net.call("predict", tensor(X)), "predict", 12)
    if not np.array_equal(labels, logits.argmax(axis=1)):
        fail("predict does not return the argmax of the logits for every row")


@pytest.mark.calls_train
def test_train_records_metrics_per_epoch(pytorch_ann):
    """PyTorchANN.train changes the weights and records four metrics per epoch"""
    net = pytorch_ann.new("PyTorchANN", 6, 5, 3)
    X, y = small_data(30)
    before = net.state_dict("model")
    net.call("train", tensor(X), targets(y, 3, torch=True), tensor(X[:10]),
             targets(y[:10], 3, torch=True), epochs=3, batch_size=8, learning_rate=0.1)
    after = net.state_dict("model")
    check_trained(before, after, "train(...) on self.model")
    check_metrics(net.get("train_val_metrics"), 3, "PyTorchANN")


@pytest.mark.calls_train
def test_plot_and_judgement(pytorch_ann):
    """PyTorchANN.plot_train_val_metrics draws both curves in two panels and saves the PNG"""
    net = pytorch_ann.new("PyTorchANN", 6, 5, 3)
    X, y = small_data(30)
    net.call("train", tensor(X), targets(y, 3, torch=True), tensor(X[:10]),
             targets(y[:10], 3, torch=True), epochs=4, batch_size=8, learning_rate=0.1)
    metrics = check_metrics(net.get("train_val_metrics"), 4, "PyTorchANN")
    check_plot_and_judgement(pytorch_ann, net, metrics, "pytorch_ann_train_val_metrics.png")
