"""Assertions that turn student answers into verdicts with readable messages.

Every value from a worker is converted here into a fresh float64 ndarray (or
a Python float / int array); its original type is never trusted.  NaN and
+/-inf are wrong answers everywhere: no docstring of the assignment allows them,
so every check here fails on them, with a message that says so.
"""
import errno
import os
import stat

import numpy as np

from . import assignment, protocol, submission
from .config import size_limit


class GradeFailure(AssertionError):
    """A test failed; the message is shown to the student as it is."""


class PartialCredit(GradeFailure):
    """A failed test that still earns ``fraction`` of its points."""

    def __init__(self, fraction, message):
        super().__init__(message)
        self.fraction = fraction


def check_threshold(accuracy, threshold, what, config, detail=""):
    """Pass at or above ``threshold``; partial credit just below it when the config enables it."""
    if not np.isfinite(accuracy):
        fail(f"{what}: accuracy {accuracy}, threshold {threshold:.2f}: NaN or infinite, not an accuracy"
             + (f" ({detail})" if detail else ""))
    line = f"{what}: accuracy {accuracy:.4f}, threshold {threshold:.2f}" + (f" ({detail})" if detail else "")
    if accuracy >= threshold:
        return line
    partial = config["partial_credit"]
    if partial["fraction"] > 0 and accuracy >= threshold - partial["window"]:
        raise PartialCredit(partial["fraction"], line + f": below the threshold by less than {partial['window']},"
                                                        f" {partial['fraction']:.0%} of the points")
    fail(line + ": below the threshold")


def fail(message):
    raise GradeFailure(message)


def shape_of(x):
    return f"shape {tuple(np.shape(x))}"


def _unwrap(value):
    if protocol.marker_of(value) == protocol.TORCH:
        return value[protocol.TORCH]
    return value


def kind_of(value):
    if isinstance(value, dict):
        key = protocol.marker_of(value)
        if key == protocol.OBJECT:
            return f"an object of type {str(value.get(protocol.OBJECT))[:80]}"
        return protocol.REPLY_MARKERS.get(key, "a dict")
    if value is None:
        return "None"
    return f"a {type(value).__name__}"


# The most numbers the grader converts from one returned array (16 MB as float64): every
# legitimate answer of this assignment is far smaller; a larger one is refused unconverted.
MAX_ELEMENTS = 2_000_000


def as_array(value, what, shape=None, finite=True):
    """A fresh float64 ndarray from a returned value, or a failure naming ``what``.

    ``finite``: NaN or +/-inf anywhere fails (pass False only to give a message of your own)."""
    raw = _unwrap(value)
    if isinstance(raw, np.ndarray) and raw.size > MAX_ELEMENTS:
        fail(f"{what} returned an array of {raw.size:,} numbers (shape {raw.shape}); the grader accepts at most "
             f"{MAX_ELEMENTS:,}" + (f" and expected shape {tuple(shape)}" if shape is not None else ""))
    if shape is not None and isinstance(raw, np.ndarray) and raw.shape != tuple(shape):
        # refused before any conversion: a reply's size must not decide what the grader allocates
        fail(f"{what} returned an array of shape {raw.shape}; expected shape {tuple(shape)}")
    if isinstance(raw, (list, tuple)):
        # a list of arrays becomes float64 only after this count: 4,000 uint8 arrays (31 MB) would be 244 MB
        count = _count_numbers(raw, MAX_ELEMENTS)
        expected = None if shape is None else int(np.prod(shape, dtype=np.int64))
        if count > MAX_ELEMENTS or (expected is not None and count != expected):
            fail(f"{what} returned a list of {'more than ' if count > MAX_ELEMENTS else ''}{min(count, MAX_ELEMENTS):,}"
                 " numbers; expected " + (f"an array of shape {tuple(shape)}" if shape is not None
                                          else f"at most {MAX_ELEMENTS:,}"))
    try:
        if isinstance(raw, dict) or raw is None or isinstance(raw, str):
            raise TypeError
        arr = np.array(raw, dtype=np.float64, copy=True)
    except (TypeError, ValueError):
        fail(f"{what} returned {kind_of(value)}; expected an array of numbers"
             + (f" of shape {tuple(shape)}" if shape is not None else ""))
    if shape is not None and arr.shape != tuple(shape):
        fail(f"{what} returned an array of shape {arr.shape}; expected shape {tuple(shape)}")
    if finite:
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        if bad:
            fail(f"{what} holds NaN or infinite values ({bad} of {arr.size}); expected finite numbers")
    # subnormal numbers (below 2.2e-308) make the grader's own arithmetic on them many times slower on some
    # CPUs; they are 0 to every tolerance, so they become 0.  With the shapes checked above, the grader's
    # computations on returned numbers are then bounded by the sizes the tests ask for.
    arr[np.abs(arr) < np.finfo(np.float64).tiny] = 0.0
    return arr


def _count_numbers(value, cap):
    """How many numbers a nested list / tuple of arrays and scalars holds, counted without building anything;
    stops once past ``cap`` (returns cap + 1)."""
    count, stack = 0, [value]
    while stack:
        item = stack.pop()
        if isinstance(item, (list, tuple)):
            stack.extend(item)
        else:
            count += item.size if isinstance(item, np.ndarray) else 1
        if count > cap:
            return cap + 1
    return count


def as_labels(value, what, n):
    """Integer labels of shape (n,); the dtype must be an integer type (the handout states it)."""
    raw = _unwrap(value)
    if not isinstance(raw, np.ndarray):
        fail(f"{what} returned {kind_of(value)}; expected an integer tensor of labels, shape ({n},)")
    if raw.dtype.kind not in "iu":
        fail(f"{what} returned values of dtype {raw.dtype}; expected integer class labels (use argmax)")
    if raw.shape != (n,):
        fail(f"{what} returned shape {raw.shape}; expected ({n},), one label per image")
    return np.array(raw, dtype=np.int64, copy=True)


def first_differences(actual, expected, rtol, atol, limit=3):
    actual, expected = np.atleast_1d(actual), np.atleast_1d(expected)
    bad = ~np.isclose(actual, expected, rtol=rtol, atol=atol, equal_nan=False)
    lines = []
    for index in list(zip(*np.nonzero(bad)))[:limit]:
        index = tuple(int(i) for i in index)
        lines.append(f"  at {index}: expected {expected[index]:.6g}, got {actual[index]:.6g}")
    return int(bad.sum()), lines


def assert_close(value, expected, what, given="", hint="", rtol=1e-5, atol=1e-7):
    """``value`` (from the worker) must match ``expected`` in shape and values."""
    expected = np.asarray(expected, dtype=np.float64)
    context = f" for {given}" if given else ""
    raw = _unwrap(value)
    if isinstance(raw, np.ndarray) and raw.shape != expected.shape:   # checked before converting
        fail(f"{what}{context} returned shape {raw.shape}; expected {expected.shape}."
             + (f"\nHint: {hint}" if hint else ""))
    actual = as_array(value, what, finite=False)
    if actual.shape != expected.shape:
        fail(f"{what}{context} returned shape {actual.shape}; expected {expected.shape}."
             + (f"\nHint: {hint}" if hint else ""))
    if not np.all(np.isfinite(actual)):
        fail(f"{what}{context} returned NaN or infinite values ({int(np.count_nonzero(~np.isfinite(actual)))} of "
             f"{actual.size})." + (f"\nHint: {hint}" if hint else ""))
    count, lines = first_differences(actual, expected, rtol, atol)
    if count:
        fail(f"{what}{context}: {count} of {expected.size} values differ from the expected ones:\n"
             + "\n".join(lines) + (f"\nHint: {hint}" if hint else ""))
    return actual


def check_trained(before, after, what, keys=None):
    """Training changed the weights: ``after`` (a state_dict read back after training) is finite and
    differs from ``before`` in at least one of ``keys`` (all by default).  NaN weights are never a change."""
    keys = list(before) if keys is None else list(keys)
    if not isinstance(after, dict) or any(k not in after for k in keys):
        fail(f"{what}: the weights could not be read back after training ({kind_of(after)})")
    moved = False
    for k in keys:
        new = as_array(after[k], f"{what}: {k} after training")
        old = as_array(before[k], f"{what}: {k} before training", finite=False)
        moved = moved or new.shape != old.shape or not np.allclose(new, old)
    if not moved:
        fail(f"{what} did not change the weights")


def describe_input(name, arr):
    arr = np.asarray(arr)
    return f"{name} of {shape_of(arr)} ({arr.dtype})"


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _kind_of_file(mode):
    for test, kind in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return kind
    return "not a regular file"


def read_student_file(path, what, limit, ranges):
    """Bytes of a file the student's code could have written (or linked, or replaced by a FIFO).

    Opened relative to its folder's descriptor without following a symbolic link and without
    blocking, then ``fstat`` must say a regular file of at most ``limit`` bytes; only the byte
    ranges ``ranges`` ([(offset, count)], a negative offset counts from the end) are read, so
    nothing the file holds decides how much the grader reads.  Returns (size, [bytes per range]);
    any other file fails with a message naming ``what``."""
    try:
        fd, info = submission.open_untrusted(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            fail(f"{what} is a symbolic link; the grader reads only a real file: save the image itself there")
        fail(f"{what} could not be opened ({exc.strerror or exc}); save the image itself there as a regular file")
    try:
        if not stat.S_ISREG(info.st_mode):
            fail(f"{what} is {_kind_of_file(info.st_mode)}, not a regular file; save the image itself there")
        if info.st_size > limit:
            fail(f"{what} is {info.st_size:,} bytes, over the grader's limit of {limit:,} bytes")
        chunks = []
        for offset, count in ranges:
            start = max(0, info.st_size + offset) if offset < 0 else offset
            chunks.append(os.pread(fd, max(0, min(count, limit - start)), start) if start < limit else b"")
        return info.st_size, chunks
    finally:
        os.close(fd)


def check_png(path, name, size_limits, shows="", missing="it must be written next to your code"):
    """The file must exist and be a complete PNG image (signature, IHDR, IEND) within its size limit.

    ``shows`` says what the figure must show; every message names the file and, with it, that
    content, so a student knows which of the figures is missing or unreadable.  The file is
    read as read_student_file reads it (no link followed, no FIFO waited for, a bounded read)."""
    what = f"{name} ({shows})" if shows else name
    if path is None:
        fail(f"{what} was not found: {missing}")
    _, (head, tail) = read_student_file(path, what, size_limit(size_limits, name), [(0, 33), (-12, 12)])
    if not head.startswith(PNG_SIGNATURE) or head[12:16] != b"IHDR":
        fail(f"{what} cannot be read as a PNG image; save it with fig.savefig('{name}')")
    width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    if width == 0 or height == 0 or tail[4:8] != b"IEND":
        fail(f"{what} is an incomplete PNG image (cut short or empty); save it again with fig.savefig('{name}')")
    return width, height


def check_metrics(metrics, epochs, what):
    """train_val_metrics: the four keys, each a list of ``epochs`` finite numbers."""
    keys = ("train_losses", "train_accs", "val_losses", "val_accs")
    if not isinstance(metrics, dict) or any(k not in metrics for k in keys):
        fail(f"{what}.train_val_metrics must be a dict with the keys {', '.join(keys)}; got {kind_of(metrics)}"
             + (f" with keys {sorted(metrics)}" if isinstance(metrics, dict) else ""))
    out = {}
    for k in keys:
        arr = as_array(metrics[k], f"{what}.train_val_metrics[{k!r}]")
        if arr.shape != (epochs,):
            fail(f"{what}.train_val_metrics[{k!r}] has {arr.size} entries after {epochs} epochs; expected one "
                 "per epoch")
        out[k] = arr
    for k in ("train_accs", "val_accs"):
        if np.any(out[k] < 0) or np.any(out[k] > 1):
            fail(f"{what}.train_val_metrics[{k!r}] must hold fractions between 0 and 1; got {out[k].tolist()}")
    return out


# plot_train_val_metrics: the panels the docstrings ask for, left to right, and the metrics each shows
METRIC_PANELS = (("loss", "left", ("train_losses", "val_losses")), ("accuracy", "right", ("train_accs", "val_accs")))


def _shows(panel, values):
    """Whether one of the panel's lines plots ``values`` (the recorded metric, one per epoch)."""
    return any(np.asarray(line["y"]).shape == values.shape and np.allclose(line["y"], values, rtol=1e-4, atol=1e-6)
               for line in panel["lines"])


def check_metrics_figure(returned, metrics, what):
    """plot_train_val_metrics() returned (fig, axes): two panels, loss on the left and accuracy on the right,
    each with the training and the validation curve (the recorded values), axis labels and a legend."""
    if not isinstance(returned, list) or len(returned) != 2 or not isinstance(returned[0], dict) \
            or protocol.marker_of(returned[0]) != protocol.FIGURE:
        fail(f"{what} must return (fig, axes); got {kind_of(returned)}")
    panels = returned[0][protocol.FIGURE]
    if len(panels) != 2:
        fail(f"{what}: the figure has {len(panels)} axes; expected 2 side by side (loss, accuracy)")
    for i, panel in enumerate(panels):
        for line in panel["lines"]:
            as_array(line["y"], f"{what}: the line {str(line.get('label'))[:40]!r} of axes {i + 1}")
    for (title, side, keys), panel, other in zip(METRIC_PANELS, panels, reversed(panels)):
        wanted = [np.asarray(metrics[k], dtype=np.float64) for k in keys]
        if not all(_shows(panel, w) for w in wanted):
            swapped = all(_shows(other, w) for w in wanted)
            fail(f"{what}: the {side} panel must show the training and the validation {title} ({keys[0]} and "
                 f"{keys[1]} from train_val_metrics)" + ("; they are in the other panel: loss goes on the "
                                                          "left, accuracy on the right" if swapped else ""))
        if not (panel["xlabel"] and (panel["ylabel"] or panel["title"])):
            fail(f"{what}: the {title} panel needs axis labels")
        if not panel.get("legend") or len(panel["legend"]) < 2:
            fail(f"{what}: the {title} panel needs a legend naming the training and the validation curve "
                 "(label= on each plot, then ax.legend())")


JUDGEMENTS = ("underfitting", "overfitting", "generalizing")


def check_plot_and_judgement(student_file, net, metrics, png_name):
    """plot_train_val_metrics() returns the right figure and writes ``png_name``;
    report_my_judgement() returns one of the three strings."""
    student_file.fresh_path(png_name)
    check_metrics_figure(net.call("plot_train_val_metrics"), metrics, "plot_train_val_metrics()")
    check_png(student_file.path(png_name), png_name, student_file.session.config["size_limits"],
              assignment.FIGURES[png_name],
              missing="plot_train_val_metrics() must save it in the current folder")
    judgement = net.call("report_my_judgement")
    if judgement not in JUDGEMENTS:
        fail(f"report_my_judgement returned {judgement!r}; expected one of {JUDGEMENTS}")


def check_judgement_rule(net, cases, rule, what):
    """report_my_judgement() on synthetic curves: for each (train_accs, val_accs) of ``cases``,
    ``net.train_val_metrics`` is set to them (with made-up losses) and the answer must be the word
    ``rule(metrics)`` gives (the docstring's rule, grader-side)."""
    for train_accs, val_accs in cases:
        metrics = {"train_losses": [1.0, 0.8, 0.6][:len(train_accs)], "train_accs": list(train_accs),
                   "val_losses": [1.1, 0.9, 0.7][:len(val_accs)], "val_accs": list(val_accs)}
        net.set("train_val_metrics", metrics)
        expected = rule(metrics)
        got = net.call("report_my_judgement")
        if got != expected:
            fail(f"{what} returned {str(got)[:60]!r} with self.train_val_metrics set to train_accs {list(train_accs)} "
                 f"and val_accs {list(val_accs)}; the docstring's rule gives {expected!r} for the last epoch "
                 f"(t = {train_accs[-1]}, v = {val_accs[-1]}): \"overfitting\" if t - v > 0.05, otherwise "
                 "\"underfitting\" if t < 0.80, otherwise \"generalizing\"")


def check_prediction_mode(model, predict, X, what, n, attr=None):
    """The student's prediction must switch to evaluation mode itself, run without gradients,
    and give the labels of the network in evaluation mode.

    ``model`` is a session Handle of the network (``attr`` names its submodule, e.g. "model");
    ``predict(X)`` runs the student's prediction on the encoded input ``X`` of ``n`` images and
    returns its raw answer.  The model is left in training mode before each of two calls; every
    layer that runs must be in evaluation mode with gradients off, and both calls must give the
    labels that the network itself gives in evaluation mode.  The grader never sets the mode for
    the student before these calls.  Returns the labels.
    """
    model.set_mode(True, attr=attr)
    model.probe(attr)
    first = as_labels(predict(X), what, n)
    log = model.probe_log()
    model.set_mode(True, attr=attr)
    second = as_labels(predict(X), what, n)
    if log["training"]:
        fail(f"{what} ran {', '.join(log['training'])} in training mode: the model was in training mode when "
             f"{what} was called, and {what} must switch to evaluation mode itself (model.eval()), so that "
             "dropout is off and BatchNorm uses its running statistics")
    if log["grad"]:
        fail(f"{what} ran {', '.join(log['grad'])} with gradients enabled; run the forward pass inside "
             "`with torch.no_grad():`")
    if not np.array_equal(first, second):
        fail(f"{what} gave different labels for the same images on two calls "
             f"({int(np.sum(first != second))} of {n} differ); predictions must not depend on chance")
    expected = as_labels(model.eval_labels(X, attr), "the network in evaluation mode", n)
    if not np.array_equal(first, expected):
        fail(f"{what} differs from the network's own evaluation-mode labels on {int(np.sum(first != expected))} "
             f"of {n} images; predict the argmax of the model's logits")
    return first


def check_training_mode(model, train, what, attr=None):
    """Every optimiser step of the student's training runs in training mode.

    ``model`` is a session Handle of the network (``attr`` names its submodule); ``train()`` runs the
    student's training.  Each forward pass that gradients later flow back through (a step's) is noted
    with the mode each layer ran it in; one in evaluation mode (dropout off, BatchNorm frozen) fails,
    and so does a training during which no gradient reached the model.  Forwards without a backward
    (the metrics) may run in either mode.
    """
    model.probe(attr)
    train()
    log = model.probe_log()
    if log["backward"] == 0:
        fail(f"{what} ran no backward pass through self.{attr or 'model'}: train the model's own layers")
    if log["backward_eval"]:
        modal = [layer for layer in log["backward_eval"] if "(Dropout" in layer or "(BatchNorm" in layer]
        fail(f"{what} took optimiser steps with {', '.join(modal or log['backward_eval'])} in evaluation mode (dropout "
             "off, BatchNorm not learning its statistics): call self.model.train() before the steps of every "
             "epoch, after any self.model.eval() for the metrics")


# Fashion-MNIST's ten classes, in label order (handout utils.py names them the same way; a test keeps them equal)
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot")


def _class_after(title, key, other):
    """The class name after ``key`` ("predicted:") in a title, up to ``other`` ("true:") or the end."""
    low = title.lower()
    start = low.find(key)
    if start < 0:
        return None
    start += len(key)
    stop = low.find(other, start)
    text = title[start:] if stop < 0 else title[start:stop]
    text = text.strip().rstrip("/,;|-").strip().lower()
    return next((name for name in CLASS_NAMES if name.lower() == text), None)


def _shown_index(image, images):
    """The index of the row of ``images`` (N, 28, 28) that ``image`` shows (any scale, colour map or
    extra axis of size 1), or None."""
    shown = np.asarray(image, dtype=np.float64)
    if shown.size != 28 * 28 or not np.all(np.isfinite(shown)) or np.ptp(shown) == 0:
        return None
    flat = images.reshape(len(images), -1).astype(np.float64)
    corr = np.array([np.corrcoef(shown.reshape(-1), row)[0, 1] if np.ptp(row) else 0.0 for row in flat])
    best = int(np.argmax(corr))
    return best if corr[best] >= 0.99 else None


def check_example_figures(saved, images, labels, predicted, wanted, what):
    """The figures ``what`` saved show examples as their names say.  ``saved``: StudentFile.recorded_figures();
    ``images`` (N, 28, 28), ``labels`` and ``predicted`` (N,) what the student's function was given and what
    its model predicts; ``wanted``: {file name: whether its example must be correctly classified}.  Each
    figure must show one of the images, titled "predicted: <class> / true: <class>" with that image's
    prediction and label."""
    for name, correct in wanted.items():
        figure = next((f for f in reversed(saved) if f["file"] == name), None)
        if figure is None:
            fail(f"{what} did not save {name} with matplotlib (fig.savefig or plt.savefig), so its title cannot "
                 "be read")
        title = next((t for t in figure["titles"] if "predicted:" in t.lower() and "true:" in t.lower()), None)
        if title is None:
            fail(f"{name}: no title reads \"predicted: <class name> / true: <class name>\" (titles: "
                 f"{[t[:60] for t in figure['titles'] if t]})")
        said_p, said_t = _class_after(title, "predicted:", "true:"), _class_after(title, "true:", "predicted:")
        if said_p is None or said_t is None:
            fail(f"{name}: the title {title[:80]!r} must name two of CLASS_NAMES after \"predicted:\" and \"true:\"")
        index = next((i for i in (_shown_index(im, images) for im in figure["images"]) if i is not None), None)
        if index is None:
            fail(f"{name} does not show one of the images passed to {what} (ax.imshow of X_test[i])")
        truth, guess = CLASS_NAMES[int(labels[index])], CLASS_NAMES[int(predicted[index])]
        if (said_p, said_t) != (guess, truth):
            fail(f"{name} shows image {index}, whose prediction is {guess} and true class {truth}, but its title "
                 f"says predicted: {said_p} / true: {said_t}")
        if (guess == truth) != correct:
            fail(f"{name} shows image {index}, which is {'mis' if correct else ''}classified"
                 f"{'' if correct else ' correctly'}; it must show a {'correctly classified' if correct else 'misclassified'} one")


def confusion(predicted, labels, classes=len(CLASS_NAMES)):
    """classes x classes integer matrix: row = true class, column = predicted class.

    ``predicted`` and ``labels`` are integer arrays of the same length, computed by the grader;
    a predicted label outside 0..classes-1 is counted in no column (its row total still counts it).
    """
    predicted = np.asarray(predicted, dtype=np.int64).ravel()
    labels = np.asarray(labels, dtype=np.int64).ravel()
    if predicted.shape != labels.shape:
        raise ValueError(f"confusion: {predicted.size} predictions for {labels.size} labels")
    inside = (predicted >= 0) & (predicted < classes) & (labels >= 0) & (labels < classes)
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (labels[inside], predicted[inside]), 1)
    return matrix


def class_report(predicted, labels, confusions=3):
    """(markdown text, extra_data) for an accuracy test: accuracy per class and the most frequent confusions.

    The text is a markdown table (it renders on Gradescope with output_format "md" and reads
    as plain text elsewhere) followed by one line naming the ``confusions`` most frequent
    (true class, predicted class) pairs.  extra_data holds the same numbers as integers.
    """
    labels = np.asarray(labels, dtype=np.int64).ravel()
    matrix = confusion(predicted, labels)
    total = np.bincount(labels[(labels >= 0) & (labels < len(CLASS_NAMES))], minlength=len(CLASS_NAMES))
    correct = np.diag(matrix)
    rows = ["| class | correct | accuracy |", "|---|---:|---:|"]
    for name, c, t in zip(CLASS_NAMES, correct, total):
        rows.append(f"| {name} | {int(c)} of {int(t)} | {c / t:.3f} |" if t else f"| {name} | 0 of 0 | - |")
    off = matrix.copy()
    np.fill_diagonal(off, 0)
    order = sorted(((int(off[i, j]), i, j) for i in range(len(CLASS_NAMES)) for j in range(len(CLASS_NAMES))
                    if off[i, j] > 0), key=lambda x: (-x[0], x[1], x[2]))[:confusions]
    if order:
        pairs = "; ".join(f"{CLASS_NAMES[i]} predicted as {CLASS_NAMES[j]}: {n} of {int(total[i])}"
                          for n, i, j in order)
        rows += ["", f"Most frequent confusions: {pairs}."]
    extra = {"class_names": list(CLASS_NAMES), "class_correct": [int(c) for c in correct],
             "class_total": [int(t) for t in total], "confusion_matrix": matrix.tolist()}
    return "\n".join(rows), extra
