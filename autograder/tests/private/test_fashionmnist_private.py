"""Private tests (not shipped to students) of fashionmnist.py: the submitted weights on the full test set."""
import numpy as np
import pytest

from grader.kit import (GradeFailure, as_labels, check_example_figures, check_png, check_prediction_mode,
                        check_trained, fail, file_of, image_batch, ref, tensor)

FILE = file_of("fashionmnist")
WEIGHTS = FILE.weights[0]        # fmnist.pth
FIGURES = FILE.figures           # the figures it ships, and what each must show (graded by hand)


@pytest.mark.training
@pytest.mark.cost(4)  # seconds of the reference here, 2 threads (make bench)
@pytest.mark.weight(4)
@pytest.mark.visibility("visible")
def test_accuracy_threshold(fashionmnist, fmnist_data, config, feedback):
    """fashionmnist: fmnist.pth reaches the accuracy threshold on the test set (grader-computed)"""
    if fashionmnist.path(WEIGHTS) is None:
        fail(f"{WEIGHTS} was not found in your submission (or exceeds the size limit)")
    _, _, X_test, y_test = fmnist_data
    m = config["budget"]["fashionmnist"]["test_images"]
    model = fashionmnist.call("build_model", keep=True)
    model.load_weights(WEIGHTS, timeout=config["time_limits"]["evaluate_fashionmnist"])
    model.set_mode(False)
    limit = config["time_limits"]["evaluate_fashionmnist"]

    budget = config["budget"]["fashionmnist"]
    chunk = budget["chunk"]

    def labels_for(images):
        labels = []
        for start in range(0, len(images), chunk):      # streamed: the worker never holds all test images
            part = images[start:start + chunk]
            got = fashionmnist.call("predict", model.ref(), image_batch(part), timeout=limit)
            labels.append(as_labels(got, "predict(model, X_test)", len(part)))
        return np.concatenate(labels)

    # evaluated on test images with a little random noise: answers looked up
    # from the exact test images do not help (README: residual risks).  The noise is drawn
    # from the submitted files and the config: a regrade of the same files gets the same numbers.
    noise = ref.perturb_images(X_test[:m], seed=fashionmnist.grading_seed("noise"), amount=budget["noise"])
    noisy = labels_for(noise)
    k = min(m, 2000)
    exact = ref.accuracy(labels_for(X_test[:k]), y_test[:k])
    noisy_k = ref.accuracy(noisy[:k], y_test[:k])
    if exact - noisy_k > config["cutoffs"]["lookup_gap"]:
        feedback.instructor(f"fashionmnist: accuracy {exact:.3f} on {k} exact test images but {noisy_k:.3f} on noisy "
                        "copies of them: the model may be looking answers up")
    # A lookup is not a model: a model trained on the training set does at least about as well on
    # training images as on the test images.  One that does markedly better on the test set was
    # fitted to it (a nearest-neighbour lookup of the public test images, say).
    X_train, y_train = fmnist_data[0], fmnist_data[1]
    rng = np.random.default_rng(fashionmnist.grading_seed("training sample"))
    sample = np.sort(rng.choice(len(X_train), budget["train_sample"], replace=False))
    on_train = ref.accuracy(labels_for(ref.perturb_images(
        X_train[sample], seed=fashionmnist.grading_seed("training noise"), amount=budget["noise"])), y_train[sample])
    on_test = ref.accuracy(noisy, y_test[:m])
    feedback.details(train_sample_accuracy=round(on_train, 6))
    if on_test - on_train > config["cutoffs"]["test_over_train"]:
        feedback.details(accuracy=round(on_test, 6), threshold=config["thresholds"]["fashionmnist"])
        feedback.instructor(f"fashionmnist: accuracy {on_test:.3f} on the test images but {on_train:.3f} on "
                            f"{len(sample)} training images: fitted to the test set (a lookup?)")
        fail(f"{WEIGHTS} scores {on_test:.3f} on the test images but only {on_train:.3f} on {len(sample)} of the "
             "training images; a model trained on the training set does at least about as well on the images "
             "it learnt from.  Train your model on the training set only (utils.load_mnist_f's X_train), "
             "not on the test images")
    acc = feedback.accuracy("fashionmnist", noisy, y_test[:m], "fashionmnist",
                            f"{WEIGHTS} evaluated by the grader on {m} test images, each with random noise of "
                            f"at most {budget['noise']} grey levels per pixel")
    feedback.leaderboard("Accuracy", round(acc, 4))


def test_predict_switches_to_evaluation_mode_without_gradients(fashionmnist, fmnist_data):
    """fashionmnist.predict switches the model to evaluation mode itself and runs without gradients"""
    _, _, X_test, _ = fmnist_data
    model = fashionmnist.call("build_model", keep=True)
    if fashionmnist.path(WEIGHTS) is not None:
        try:
            model.load_weights(WEIGHTS)         # trained weights make the labels tell more apart
        except GradeFailure:
            pass                                # graded in test_accuracy_threshold; a fresh model will do here
    x = image_batch(X_test[:100])
    check_prediction_mode(model, lambda images: fashionmnist.call("predict", model.ref(), images), x,
                          "predict(model, X)", 100)


def test_train_model_returns_one_loss_per_step(fashionmnist):
    """fashionmnist.train_model trains in place and returns one training loss per optimiser step"""
    rng = np.random.default_rng(22)
    X = rng.random((48, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 48)
    model = fashionmnist.call("build_model", keep=True)
    before = model.parameters()          # trainable parameters only: BatchNorm's running statistics move
    if not before:                       # without any learning
        fail("build_model() returned a model without trainable parameters")
    losses = fashionmnist.call("train_model", model.ref(), tensor(X), tensor(y), epochs=2, batch_size=16)
    if not (isinstance(losses, list) and len(losses) == 6
            and all(isinstance(v, (int, float)) and np.isfinite(v) for v in losses)):
        fail(f"train_model(48 images, epochs=2, batch_size=16) returned {str(losses)[:120]}; expected a list of "
             "6 finite floats, one training loss per optimiser step (3 batches x 2 epochs)")
    check_trained(before, model.parameters(), "train_model (it trains the model in place: its optimiser steps must "
                  "change the trainable parameters; zero the gradients before backward(), not between backward() "
                  "and step())")


def test_example_images_are_saved(fashionmnist, config):
    """fashionmnist.save_example_images writes a misclassified and a correct example, each titled with its prediction and true class"""
    rng = np.random.default_rng(23)
    X = rng.random((60, 1, 28, 28)).astype(np.float32)
    model = fashionmnist.call("build_model", keep=True)
    predicted = as_labels(fashionmnist.call("predict", model.ref(), tensor(X)), "predict(model, X)", 60)
    y = predicted.copy()
    y[::2] = (y[::2] + 1) % 10                              # half right, half wrong
    names = ("fmnist_misclassified.png", "fmnist_correct.png")
    for name in names:
        fashionmnist.fresh_path(name)
    fashionmnist.record_figures()
    fashionmnist.call("save_example_images", model.ref(), tensor(X), tensor(y.astype(np.int64)))
    saved = fashionmnist.recorded_figures()
    for name in names:
        check_png(fashionmnist.path(name), name, config["size_limits"], FIGURES[name],
                  missing="save_example_images(model, X_test, y_test) must write it in the current folder")
    check_example_figures(saved, X[:, 0], y, predicted, dict(zip(names, (False, True))), "save_example_images")


@pytest.mark.parametrize("name", list(FIGURES))
@pytest.mark.weight(0.5)
def test_submitted_figures(fashionmnist, config, name):
    """fashionmnist: the submitted figure is a PNG (its content is graded by hand)"""
    check_png(fashionmnist.submitted_path(name), name, config["size_limits"], FIGURES[name],
              missing="upload it with fashionmnist.py (run your training script to make it)")
