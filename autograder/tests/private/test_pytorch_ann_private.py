"""Private tests (not shipped to students) of pytorch_ann.py."""
import numpy as np
import pytest

from grader.kit import (as_array, as_labels, assert_close, check_judgement_rule, check_metrics,
                        check_prediction_mode, fail, flat_images, ref, targets, tensor,
                        tolerance)


def test_loss_and_optimizer_are_cross_entropy_and_sgd(pytorch_ann, config):
    """PyTorchANN.train: two full-batch epochs equal two SGD steps on the mean cross-entropy"""
    rng = np.random.default_rng(3)
    X = rng.random((16, 7)).astype(np.float32)
    y = rng.integers(0, 4, 16)
    net = pytorch_ann.new("PyTorchANN", 7, 6, 4, random_seed=5)
    state = net.state_dict("model")
    expected = ref.ann_sgd_steps(state, X.astype(np.float64), np.eye(4)[y], lr=0.5, steps=2)
    net.call("train", tensor(X), targets(y, 4, torch=True), tensor(X), targets(y, 4, torch=True),
             epochs=2, batch_size=16, learning_rate=0.5)
    after = net.state_dict("model")
    for k in expected:
        assert_close(after.get(k), expected[k], f"self.model[{k}] after train(epochs=2, batch_size=N)",
                     "X float32 of shape (16, 7)", "use nn.CrossEntropyLoss, torch.optim.SGD(lr=learning_rate) "
                     "and optimizer.zero_grad() before every backward()",
                     **tolerance(config, "float32_sgd_steps"))


def test_predict_keeps_weights_and_seed_is_deterministic(pytorch_ann):
    """PyTorchANN: predict leaves the weights alone; the same seed gives the same model"""
    X = np.random.default_rng(4).random((9, 5)).astype(np.float32)
    a = pytorch_ann.new("PyTorchANN", 5, 4, 3, random_seed=11)
    b = pytorch_ann.new("PyTorchANN", 5, 4, 3, random_seed=11)
    sa, sb = a.state_dict("model"), b.state_dict("model")
    for k in sa:
        assert_close(sb[k], sa[k], f"self.model[{k}] of two models built with random_seed=11")
    as_labels(a.call("predict", tensor(X)), "predict", 9)
    for k, v in a.state_dict("model").items():
        assert_close(v, sa[k], f"self.model[{k}] after predict", hint="predict must not train")


def test_predict_switches_to_evaluation_mode_without_gradients(pytorch_ann):
    """PyTorchANN.predict switches to evaluation mode itself and runs without gradients"""
    X = np.random.default_rng(6).random((12, 5)).astype(np.float32)
    net = pytorch_ann.new("PyTorchANN", 5, 4, 3, random_seed=6)
    labels = check_prediction_mode(net, lambda x: net.call("predict", x), tensor(X), "predict", 12, attr="model")
    state = {k: np.asarray(v, dtype=np.float64) for k, v in net.state_dict("model").items()}
    expected = ref.linear_relu_linear_logits(state, X.astype(np.float64)).argmax(axis=1)
    if not np.array_equal(labels, expected):
        fail(f"predict's labels differ from the network's on {int(np.sum(labels != expected))} of 12 inputs")


def test_accuracy_is_the_fraction_of_correct_predictions(pytorch_ann, config):
    """PyTorchANN.accuracy: the fraction of correct predictions for one-hot y"""
    rng = np.random.default_rng(13)
    X = rng.random((20, 5)).astype(np.float32)
    net = pytorch_ann.new("PyTorchANN", 5, 6, 3, random_seed=13)
    state = {k: np.asarray(v, dtype=np.float64) for k, v in net.state_dict("model").items()}
    y = ref.linear_relu_linear_logits(state, X.astype(np.float64)).argmax(axis=1)
    y[:8] = (y[:8] + 1) % 3                                 # 12 of 20 right: 0.6
    assert_close(net.call("accuracy", tensor(X), targets(y, 3, torch=True)), 12 / 20, "accuracy",
                 "X float32 (20, 5) and one-hot y float32 (20, 3) of which the model gets 12 right",
                 "return the fraction of rows whose predicted label is y's argmax: a float or a 0-dim tensor",
                 **tolerance(config, "accuracy"))


def trained_on_small_data(pytorch_ann):
    """A PyTorchANN trained 30 epochs on 60 rows of learnable labels, validated on 30 rows of labels unrelated
    to the images: (its metrics, {set: (X, labels, the final model's logits)}) from the grader's math."""
    rng = np.random.default_rng(8)
    X = rng.random((60, 6)).astype(np.float32)
    y = X[:, :3].argmax(axis=1)                      # learnable labels
    Xv = rng.random((30, 6)).astype(np.float32)
    yv = rng.integers(0, 3, 30)                      # labels unrelated to the images
    net = pytorch_ann.new("PyTorchANN", 6, 8, 3, random_seed=2)
    net.call("train", tensor(X), targets(y, 3, torch=True), tensor(Xv), targets(yv, 3, torch=True),
             epochs=30, batch_size=10, learning_rate=0.5)
    metrics = check_metrics(net.get("train_val_metrics"), 30, "PyTorchANN")
    state = {k: np.asarray(v, dtype=np.float64) for k, v in net.state_dict("model").items()}
    return metrics, {name: (x, labels, ref.linear_relu_linear_logits(state, x.astype(np.float64)))
                     for name, x, labels in (("train", X, y), ("val", Xv, yv))}


def check_final_metrics(metrics, sets, which, config, where):
    """The last ``which`` accuracy and loss equal the final model's on that whole set."""
    _, labels, logits = sets[which]
    hint = f"compute them on {where} with the weights at the end of the epoch"
    assert_close(metrics[f"{which}_accs"][-1], ref.accuracy(logits.argmax(axis=1), labels),
                 f"train_val_metrics['{which}_accs'][-1]", hint=hint, **tolerance(config, "accuracy"))
    assert_close(metrics[f"{which}_losses"][-1], ref.cross_entropy(ref.softmax(logits), np.eye(3)[labels]),
                 f"train_val_metrics['{which}_losses'][-1]", hint=hint, **tolerance(config, "float32_loss"))


def test_validation_metrics_come_from_the_validation_data(pytorch_ann, config):
    """PyTorchANN.train: the last val_accs / val_losses describe the final model on X_val"""
    metrics, sets = trained_on_small_data(pytorch_ann)
    check_final_metrics(metrics, sets, "val", config, "X_val, y_val")


@pytest.mark.weight(0.5)
def test_training_metrics_describe_the_whole_training_set(pytorch_ann, config):
    """PyTorchANN.train: the last train_accs / train_losses are the final model's on the whole X_train"""
    metrics, sets = trained_on_small_data(pytorch_ann)
    check_final_metrics(metrics, sets, "train", config, "the whole X_train, y_train (not the last batch, not a "
                        "running average)")


def train_main_config(pytorch_ann, fmnist_data, config, n, schedule, seed=42, relabel=None):
    """Train on the first ``n`` images, one train() call per (epochs, learning rate) in ``schedule``;
    with ``relabel`` (ref.Relabelling), on the grader's own labelling of the classes."""
    X_train, y_train, _, _ = fmnist_data
    b = config["budget"]["pytorch_ann"]
    pytorch_ann.seed(seed)
    net = pytorch_ann.new("PyTorchANN", 784, b["hidden_size"], 10, random_seed=seed)
    v = b["val_images"]
    val = slice(60000 - v, 60000)
    X = flat_images(X_train[:n], torch=True)

    def labelled(labels):
        return targets(relabel.labels(labels) if relabel else labels, 10, torch=True)
    y = labelled(y_train[:n])
    Xv = flat_images(X_train[val], torch=True)
    yv = labelled(y_train[val])
    for epochs, lr in schedule:
        net.call("train", X, y, Xv, yv, epochs=epochs, batch_size=b["batch_size"], learning_rate=lr,
                 timeout=config["time_limits"]["train_pytorch_ann"])
    return net


@pytest.mark.training
@pytest.mark.cost(11)  # seconds of the reference here, 2 threads (make bench)
@pytest.mark.weight(4)
@pytest.mark.visibility("visible")
def test_accuracy_threshold(pytorch_ann, fmnist_data, config, feedback):
    """PyTorchANN reaches the accuracy threshold on Fashion-MNIST (grader-computed)"""
    b = config["budget"]["pytorch_ann"]
    relabel = ref.Relabelling(pytorch_ann.grading_seed("labels"))
    net = train_main_config(pytorch_ann, fmnist_data, config, b["train_images"], b["schedule"], b["seed"], relabel)
    state = net.state_dict("model")
    shapes = {"0.weight": (b["hidden_size"], 784), "0.bias": (b["hidden_size"],), "2.weight": (10, b["hidden_size"]),
              "2.bias": (10,)}
    state = {k: as_array(state.get(k), f"trained self.model[{k}]", shape=shape) for k, shape in shapes.items()}
    _, _, X_test, y_test = fmnist_data
    m = b["test_images"]
    logits = ref.in_chunks(lambda x: ref.linear_relu_linear_logits(state, x), X_test[:m])
    feedback.accuracy("pytorch_ann", logits.argmax(axis=1), y_test[:m], "PyTorchANN",
                      f"trained on {b['train_images']} images with the grader's own labelling of the classes, "
                      f"(epochs, learning rate) {b['schedule']}, "
                      f"evaluated by the grader on {m} test images", relabel=relabel)


@pytest.mark.training
@pytest.mark.cost(5)  # seconds of the reference here, 2 threads (make bench)
@pytest.mark.weight(0.5)
def test_judgement_follows_the_stated_rule(pytorch_ann, fmnist_data, config):
    """PyTorchANN.report_my_judgement follows the docstring's rule on the main block's run"""
    b = config["budget"]["pytorch_ann"]
    net = train_main_config(pytorch_ann, fmnist_data, config, b["judgement_train_images"],
                            [(b["judgement_epochs"], b["lr"])])
    metrics = check_metrics(net.get("train_val_metrics"), b["judgement_epochs"], "PyTorchANN")
    expected = ref.judgement(metrics)
    got = net.call("report_my_judgement")
    if got != expected:
        fail(f"report_my_judgement returned {got!r}; the rule gives {expected!r} for final training accuracy "
             f"{metrics['train_accs'][-1]:.3f} and validation accuracy {metrics['val_accs'][-1]:.3f}")


@pytest.mark.weight(0.5)
def test_judgement_rule_on_synthetic_curves(pytorch_ann):
    """PyTorchANN.report_my_judgement applies the docstring's rule on both sides of each of its boundaries"""
    net = pytorch_ann.new("PyTorchANN", 4, 3, 2)
    check_judgement_rule(net, ref.JUDGEMENT_CASES, ref.judgement, "PyTorchANN.report_my_judgement()")
