"""Private tests (not shipped to students) of pytorch_cnn.py."""
import numpy as np
import pytest

from grader.kit import (as_array, assert_close, check_judgement_rule, check_metrics,
                        check_prediction_mode, check_training_mode, fail, image_batch, ref,
                        targets, tensor, tolerance)


def images(n, seed=0):
    return np.random.default_rng(seed).random((n, 1, 28, 28)).astype(np.float32)


def test_optimizer_is_adam_with_the_given_rate(pytorch_cnn, config):
    """PyTorchCNN.train: one Adam step moves each weight by about learning_rate"""
    net = pytorch_cnn.new("PyTorchCNN")
    # two images: one step whatever the batch size (a batch of one cannot pass the last BatchNorm2d,
    # whose input is 1 x 1 per channel), so a correct train() with small mini-batches still takes one
    X = images(2, 1)
    y = np.arange(2)
    before = as_array(net.state_dict("model")["0.weight"], "0.weight")
    lr = 0.01
    net.call("train", tensor(X), targets(y, 10, torch=True), tensor(X[:2]),
             targets(y[:2], 10, torch=True), epochs=1, learning_rate=lr)
    step = np.abs(as_array(net.state_dict("model")["0.weight"], "0.weight") - before)
    band = tolerance(config, "adam_step")
    share = float(np.mean(np.abs(step - lr) <= band["atol"] + band["rtol"] * lr))
    if share < config["cutoffs"]["adam_step_share"]:
        fail(f"after train(2 images, epochs=1, learning_rate={lr:g}) only {share:.0%} of the first convolution's "
             f"weights moved by about {lr:g} (median move {np.median(step):.2g}); one torch.optim.Adam step with "
             "lr=learning_rate moves each weight by about lr")


def test_forward_logits_and_accuracy(pytorch_cnn, fmnist_data, config):
    """PyTorchCNN.forward gives the network's logits; accuracy is the fraction right for one-hot y"""
    X_train, _, _, _ = fmnist_data
    images_u8 = X_train[:20]
    net = pytorch_cnn.new("PyTorchCNN", random_seed=4)
    x = image_batch(images_u8)
    net.set_mode(False, attr="model")      # the grader's choice: forward's contract says nothing of the mode
    state = net.state_dict("model")
    try:
        logits = ref.cnn_logits(state, images_u8)
    except ValueError as exc:
        fail(f"PyTorchCNN: {exc}")
    assert_close(net.call("forward", x), logits, "forward", "20 Fashion-MNIST images, evaluation mode",
                 "forward returns the logits of self.model (no softmax)", **tolerance(config, "float32_convolution"))
    y = logits.argmax(axis=1)
    y[:5] = (y[:5] + 1) % 10                                # 15 of 20 right: 0.75
    assert_close(net.call("accuracy", x, targets(y, 10, torch=True)), 15 / 20, "accuracy",
                 "20 Fashion-MNIST images and one-hot y float32 (20, 10) of which the model gets 15 right",
                 "return the fraction of rows whose predicted label is y's argmax: a float or a 0-dim tensor",
                 **tolerance(config, "accuracy"))


def test_predict_uses_evaluation_mode(pytorch_cnn, fmnist_data, config):
    """PyTorchCNN.predict: evaluation mode (no dropout, BatchNorm statistics unchanged), no gradients, labels match the weights"""
    X_train, y_train, _, _ = fmnist_data
    net = pytorch_cnn.new("PyTorchCNN")
    x = image_batch(X_train[:64])
    net.call("train", x, targets(y_train[:64], 10, torch=True), x, targets(y_train[:64], 10, torch=True),
             epochs=2, learning_rate=0.001)
    state = net.state_dict("model")
    # left in training mode on purpose: predict itself must switch to evaluation mode
    first = check_prediction_mode(net, lambda images: net.call("predict", images), x, "predict", 64, attr="model")
    after = net.state_dict("model")
    for k in state:
        if k.endswith(("running_mean", "running_var")):
            assert_close(after[k], state[k], f"BatchNorm {k} after predict",
                         hint="call self.model.eval() in predict so BatchNorm does not update its statistics")
    try:
        expected = ref.cnn_predict(state, X_train[:64])
    except ValueError as exc:
        fail(f"PyTorchCNN: {exc}")
    agree = float(np.mean(first == expected))
    if agree < config["cutoffs"]["cnn_predict_agreement"]:
        fail(f"predict agrees with the evaluation-mode network on only {agree:.0%} of 64 images")


@pytest.mark.weight(0.5)
def test_every_step_runs_in_training_mode(pytorch_cnn, fmnist_data):
    """PyTorchCNN.train takes every optimiser step in training mode, in every epoch"""
    X_train, y_train, _, _ = fmnist_data
    net = pytorch_cnn.new("PyTorchCNN")
    x, y = image_batch(X_train[:32]), targets(y_train[:32], 10, torch=True)
    check_training_mode(net, lambda: net.call("train", x, y, x, y, epochs=3, learning_rate=0.001),
                        "train(32 images, epochs=3)", attr="model")


@pytest.mark.training
@pytest.mark.cost(53)  # seconds of the reference here, 2 threads (make bench)
@pytest.mark.weight(4)
@pytest.mark.visibility("visible")
def test_accuracy_threshold(pytorch_cnn, fmnist_data, config, feedback):
    """PyTorchCNN reaches the accuracy threshold on Fashion-MNIST (grader-computed)"""
    b = config["budget"]["pytorch_cnn"]
    X_train, y_train, X_test, y_test = fmnist_data
    relabel = ref.Relabelling(pytorch_cnn.grading_seed("labels"))   # trained on the grader's own labelling
    pytorch_cnn.seed(b["seed"])
    net = pytorch_cnn.new("PyTorchCNN", random_seed=b["seed"])
    # a model built wrong cannot pass below; say so at once instead of after 60,000 images of training
    untrained = {k: as_array(val, f"self.model[{k}]") for k, val in net.state_dict("model").items()}
    mismatch = ref.cnn_state_mismatch(untrained)
    if mismatch:
        fail(f"PyTorchCNN: self.model's state_dict does not match the assignment's architecture "
             f"({mismatch}), so it was not trained: build self.model in __init__ "
             "exactly as its docstring says (the public architecture test shows the difference)")
    n, chunk = b["train_images"], b["chunk"]
    calls = (n + chunk - 1) // chunk
    v = b["val_images"]
    xv = image_batch(X_train[-v:])
    yv = targets(relabel.labels(y_train[-v:]), 10, torch=True)
    limit = config["time_limits"]["train_pytorch_cnn"]
    for i, start in enumerate(range(0, n, chunk)):
        lr = b["lr_start"] * (b["lr_end"] / b["lr_start"]) ** (i / max(calls - 1, 1))
        xs = X_train[start:start + chunk]
        net.call("train", image_batch(xs),
                 targets(relabel.labels(y_train[start:start + chunk]), 10, torch=True), xv, yv, epochs=1,
                 learning_rate=lr, timeout=limit)
    state = {k: as_array(val, f"trained self.model[{k}]") for k, val in net.state_dict("model").items()}
    m = b["test_images"]
    try:
        predicted = ref.cnn_predict(state, X_test[:m])
    except ValueError as exc:
        fail(f"PyTorchCNN: {exc}")
    feedback.accuracy("pytorch_cnn", predicted, y_test[:m], "PyTorchCNN",
                      f"train() called on {calls} chunks of {chunk} of {n} images with a decaying learning rate "
                      "and the grader's own labelling of the classes; "
                      f"evaluated by the grader on {m} test images", relabel=relabel)


@pytest.mark.training
@pytest.mark.cost(2)  # seconds of the reference here, 2 threads (make bench)
@pytest.mark.weight(0.5)
def test_judgement_follows_the_stated_rule(pytorch_cnn, fmnist_data, config):
    """PyTorchCNN.report_my_judgement follows the docstring's rule on the main block's settings"""
    b = config["budget"]["pytorch_cnn"]
    X_train, y_train, _, _ = fmnist_data
    n, v, epochs = b["judgement_train_images"], b["judgement_val_images"], b["judgement_epochs"]
    val = slice(b["judgement_val_start"], b["judgement_val_start"] + v)
    pytorch_cnn.seed(b["seed"])
    net = pytorch_cnn.new("PyTorchCNN")
    net.call("train", image_batch(X_train[:n]),
             targets(y_train[:n], 10, torch=True),
             image_batch(X_train[val]),
             targets(y_train[val], 10, torch=True), epochs=epochs, learning_rate=b["judgement_lr"],
             timeout=config["time_limits"]["train_pytorch_cnn"])
    metrics = check_metrics(net.get("train_val_metrics"), epochs, "PyTorchCNN")
    expected = ref.judgement(metrics)
    got = net.call("report_my_judgement")
    if got != expected:
        fail(f"report_my_judgement returned {got!r}; the rule gives {expected!r} for final training accuracy "
             f"{metrics['train_accs'][-1]:.3f} and validation accuracy {metrics['val_accs'][-1]:.3f}")


@pytest.mark.weight(0.5)
def test_judgement_rule_on_synthetic_curves(pytorch_cnn):
    """PyTorchCNN.report_my_judgement applies the docstring's rule on both sides of each of its boundaries"""
    net = pytorch_cnn.new("PyTorchCNN")
    check_judgement_rule(net, ref.JUDGEMENT_CASES, ref.judgement, "PyTorchCNN.report_my_judgement()")
