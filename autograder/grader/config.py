"""Load, check and hash autograder/config.toml, the grading policy.

Every setting is declared once below (``SCHEMA``) with its type, its default (``REQUIRED``:
config.toml must set it) and a one-line description; a check, where a type is not enough.
config.toml states only the settings without a default and what the course changes.
An unknown setting is an error naming the closest valid one; a wrong type or value is an
error naming the setting.  ``python -m grader.config`` prints every setting with its
description, default and the value in force, and the tests' points (grader/points.py).
"""
import difflib
import hashlib
import os
import sys
import tomllib
from types import MappingProxyType
from typing import NamedTuple

from . import assignment, discovery

GRADER_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_PATH = os.path.join(assignment.FOLDER, "config.toml")       # the course's: autograder/config.toml
TESTS_DIR = discovery.TESTS_DIR         # the assignment's tests/ (the course's: autograder/tests/)
VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")
REQUIRED = object()
WEIGHTS_MOVED = ("a test's points are its @pytest.mark.weight(n) marker in autograder/tests/ (make config adds "
                 "them up); remove the table and put each number in its test's marker")
# settings that were renamed: {old dotted name: new one} (the old name is an error that names the new)
RENAMED = MappingProxyType({"grading.hidden_visibility": "grading.private_visibility"})  # the private tests' old name


class ConfigError(ValueError):
    pass


class Key(NamedTuple):
    kind: str               # "int", "number", "bool", "str", "schedule"
    default: object
    description: str
    low: float = None       # inclusive bounds for numbers
    high: float = None
    choices: tuple = ()


def _fraction(description, default=REQUIRED):
    return Key("number", default, description, 0, 1)


def _count(description, default=REQUIRED, low=1, high=None):
    return Key("int", default, description, low, high)


def _seconds(description, default=REQUIRED):
    return Key("number", default, description, 0.001)


def _tolerance(description, rtol, atol):
    return Key("tolerance", (rtol, atol), f"[rtol, atol]: {description}", 0)


SECTIONS = {
    "grading": {
        "private_visibility": Key("str", "after_published", "visibility of tests in tests/private/ (not shipped to "
                                  "students) unless a test says otherwise", choices=VISIBILITIES),
        "public_visibility": Key("str", "visible", "visibility of tests in tests/public/", choices=VISIBILITIES),
        "worker_uid_base": _count("first uid of the worker slots (root only): slot n owns worker_uid_base + n * "
                                  "uids_per_slot + k, file k runs as the k-th; none may have an account", 64000),
        "worker_slots": _count("how many graders may run at once on one machine (root only)", 64),
        "uids_per_slot": _count("uids per slot: one per graded file and spares", 8, low=len(assignment.STEMS) + 1),
        "worker_group": Key("str", "nogroup", "group of every worker process (root only)"),
        "landlock": Key("bool", True, "Landlock file-system, TCP and signal rules in every worker (NNAG_LANDLOCK=off "
                        "overrides)"),
        "worker_threads": _count("threads of the worker's torch / BLAS / OpenMP; 0: ceil(CPU quota), at least 1 "
                                 "(NNAG_WORKER_THREADS overrides)", 0, low=0),
        "output_cap": _count("bytes of the student's printed output kept per worker", 65536, low=0),
        "worker_template": Key("bool", True, "fork each worker from one template process per grading that has "
                               "loaded numpy and torch (spawn.py); only with one worker thread, else and wherever "
                               "the template cannot serve, workers start afresh (NNAG_WORKER_TEMPLATE=off "
                               "overrides)"),
    },
    "limits": {
        "cpu_seconds": _count("CPU seconds per worker process (all threads)"),
        "memory_mb": _count("private memory per worker (RLIMIT_DATA), less where the container has less"),
        "reserve_mb": _count("memory kept back from the container beyond what the grader holds (below 0 only "
                             "in the self-tests: the worker's limit then exceeds the container's)", 96, low=None),
        "reply_mb": _count("largest reply frame the grader reads from a worker, and what it decodes to", 32),
        "processes": _count("processes and threads of the worker user (root only)"),
        "file_size_mb": _count("largest file a worker may write"),
        "scratch_mb": _count("MB of disk a worker's folders (scratch and home, the uploads included) may hold, "
                             "measured by the grader after every request", 256),
        "scratch_files": _count("files and folders a worker's folders may hold, measured as scratch_mb is", 1000),
        "open_files": _count("open files per worker"),
        "output_mb": _count("printed output after which the worker is killed"),
    },
    "time_limits": {
        "total": _seconds("seconds for the whole submission, shared by the files (file_minimum each, the rest "
                          "by [time_shares]); keep below Gradescope's timeout"),
        "import": _seconds("seconds to import a student's file"),
        "call": _seconds("seconds per call into student code unless a test gives its own"),
        **{f.time_limit_key: _seconds(f"seconds per full-data training or evaluation call of {f.code}")
           for f in assignment.FILES if f.time_limit_key},
        "timeouts_per_file": _count("timed-out requests after which a file's remaining tests fail at once", 2),
        "file_minimum": _seconds("seconds of the total every graded file is guaranteed before [time_shares] "
                                 "divides the rest", 30),
        "scale_with_cpu": Key("bool", True, "per-request limits are stated for one CPU: below one CPU of quota "
                              "they are multiplied by 1 / quota"),
        "largest_scale": Key("number", 4.0, "the most the per-request limits are multiplied by", 1),
    },
    "time_shares": {f.stem: Key("number", 1.0, f"{f.code}'s share of the total time, relative to the other files'",
                                0.001) for f in assignment.FILES},
    "size_limits": {
        "default": _count("bytes: largest uploaded file the grader copies"),
        **{name: _count(f"bytes: largest {name} the grader copies", None)
           for f in assignment.FILES for name in f.uploads},
    },
    "thresholds": {f.stem: _fraction(f"accuracy {f.code}'s accuracy test must reach") for f in assignment.FILES},
    "feedback": {
        "per_class": Key("bool", True, "every accuracy test shows per-class accuracy and confusions"),
        "confusions": _count("how many (true, predicted) confusions to name", 3, low=0, high=90),
    },
    "partial_credit": {
        "fraction": _fraction("share of an accuracy test's points just below its threshold (0: off)", 0.0),
        "window": _fraction("how far below the threshold partial credit still applies", 0.02),
    },
    "cutoffs": {
        "numpy_predict_agreement": _fraction("instructor report: numpy predict() agreeing with the trained "
                                             "weights on less than this share of test images", 0.9),
        "cnn_predict_agreement": _fraction("PyTorchCNN.predict must agree with the evaluation-mode network on "
                                           "at least this share of images", 0.98),
        "lookup_gap": _fraction("instructor report: fashionmnist accuracy on exact test images higher than on "
                                "noisy copies by more than this", 0.15),
        "test_over_train": _fraction("fashionmnist: the accuracy test fails a model whose accuracy on the test "
                                     "images beats its accuracy on budget.fashionmnist.train_sample training "
                                     "images by more than this (a lookup of the test set, not a model)", 0.05),
        "adam_step_share": _fraction("PyTorchCNN's optimiser test: at least this share of the first convolution's "
                                     "weights must move by learning_rate within tolerances.adam_step (one Adam "
                                     "step moves each weight by about lr)", 0.8),
        "untrained_weights": _fraction("instructor report: a fixed-architecture accuracy test's weights, trained on "
                                       "the grader's relabelled classes, predicting the true class numbers on more "
                                       "than this share of test images (and more than the relabelled ones)", 0.5),
    },
    # How close an answer must be to the grader's own, per comparison the tests make
    # (grader.kit.tolerance; checks.assert_close: |got - want| <= atol + rtol * |want|).
    "tolerances": {
        "sgd_step": _tolerance("numpy weights after one float64 SGD step", 1e-4, 1e-8),
        "finite_differences": _tolerance("numpy gradients against central finite differences", 1e-4, 1e-7),
        "float32_forward": _tolerance("a float32 linear network's logits against float64 math", 1e-4, 1e-5),
        "float32_sgd_steps": _tolerance("float32 weights after a few torch SGD steps against float64 math",
                                        1e-3, 1e-5),
        "float32_loss": _tolerance("a float32 loss the student records against float64 math", 1e-3, 1e-7),
        "float32_convolution": _tolerance("the CNN's float32 logits against the grader's float64 forward pass",
                                          1e-3, 1e-4),
        "accuracy": _tolerance("an accuracy (a fraction of whole counts) against the grader's count", 0, 1e-6),
        "adam_step": _tolerance("one Adam step's move of a weight against learning_rate (relative)", 0.5, 0),
        "hyperparameter": _tolerance("a float hyperparameter of a layer against the docstring's value", 0, 1e-9),
    },
}
_SEED = _count("seed of the grader's training run", 1, low=0)
_TEST_IMAGES = _count("test images the grader evaluates on", 10000, high=10000)
BUDGETS = {
    "numpy_ann": {
        "train_images": _count("training images", high=60000), "val_images": _count("validation images passed to train() (the last of the training set)", 1000),
        "epochs": _count("epochs"), "batch_size": _count("batch size"),
        "lr": Key("number", REQUIRED, "learning rate", 0), "hidden_size": _count("hidden units"),
        "test_images": _TEST_IMAGES, "seed": _SEED,
    },
    "pytorch_ann": {
        "train_images": _count("training images", high=60000), "val_images": _count("validation images"),
        "schedule": Key("schedule", REQUIRED, "[epochs, learning rate] pairs, one train() call each"),
        "batch_size": _count("batch size"),
        "lr": Key("number", REQUIRED, "learning rate of the report_my_judgement run (the main block's)", 0),
        "judgement_train_images": _count("training images of the report_my_judgement run"),
        "judgement_epochs": _count("epochs of the report_my_judgement run"),
        "hidden_size": _count("hidden units"), "test_images": _TEST_IMAGES, "seed": _SEED,
    },
    "pytorch_cnn": {
        "train_images": _count("training images", high=60000), "chunk": _count("images per train() call (with epochs=1: a full-batch train() does one Adam step per call)"),
        "lr_start": Key("number", REQUIRED, "learning rate of the first chunk (it decays geometrically)", 0),
        "lr_end": Key("number", REQUIRED, "learning rate of the last chunk", 0),
        "val_images": _count("validation images per train() call"), "test_images": _TEST_IMAGES, "seed": _SEED,
        "judgement_train_images": _count("training images of the report_my_judgement run"),
        "judgement_val_images": _count("validation images of the report_my_judgement run"),
        "judgement_val_start": _count("index of the first validation image of that run", 50000, low=0),
        "judgement_epochs": _count("epochs of the report_my_judgement run"),
        "judgement_lr": Key("number", 0.001, "learning rate of that run (the main block's)", 0),
    },
    "fashionmnist": {
        "test_images": _TEST_IMAGES, "chunk": _count("test images per predict() call (the worker's memory stays small)"),
        "noise": _count("grey levels of random noise added to each test pixel (answers looked up from the exact "
                        "images do not help)", 3, low=0, high=32),
        "train_sample": _count("training images (with the same noise) the model is also scored on: a model "
                               "markedly better on the test images than on these was fitted to the test set", 2000,
                               high=60000),
    },
}
SCHEMA = MappingProxyType({**{k: MappingProxyType(v) for k, v in SECTIONS.items()},
                           **{f"budget.{k}": MappingProxyType(v) for k, v in BUDGETS.items()
                              if k in assignment.BY_STEM}})      # the budgets of the assignment's files
del SECTIONS, BUDGETS
KINDS = MappingProxyType({"int": "a whole number", "number": "a number", "bool": "true or false", "str": "a string",
                          "schedule": "a list of [epochs, learning rate] pairs",
                          "tolerance": "a pair [rtol, atol] of numbers, each at least 0"})


def size_limit(size_limits, name):
    """Bytes the grader accepts of the file ``name``: its own [size_limits] entry, else the default."""
    limit = size_limits.get(name)
    return size_limits["default"] if limit is None else limit


def load(path=None, overrides=()):
    """Read and check the config; ``overrides`` are "section.key=value" strings (TOML values)
    applied on top, e.g. "budget.pytorch_cnn.train_images=9600"."""
    path = path or os.environ.get("NNAG_CONFIG") or DEFAULT_PATH
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
        config = tomllib.loads(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the grader config ({exc})") from None
    for item in overrides:
        _override(config, item, path)
        raw += b"\n# override " + item.encode("utf-8")
    config = check(config, path)
    config["_overrides"] = list(overrides)
    config["_path"] = path
    config["_hash"] = hashlib.sha256(raw).hexdigest()[:16]
    return config


def _closest(name, valid):
    close = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.5)
    return f"; did you mean {close[0]}?" if close else f"; valid: {', '.join(valid)}"


def _table(config, dotted):
    table = config
    for part in dotted.split("."):
        table = table.get(part, {}) if isinstance(table, dict) else {}
    return table


def check(config, path):
    """The config with every default filled in; ConfigError names the first wrong setting."""
    tables = list(SCHEMA)
    for key, value in config.items():
        if key == "weights":
            raise ConfigError(f"{path}: [weights] is no longer read: {WEIGHTS_MOVED}")
        if key != "budget" and key not in SCHEMA:
            raise ConfigError(f"{path}: unknown section [{key}]" + _closest(key, tables))
        if key == "budget" and isinstance(value, dict):
            for stem in value:
                if f"budget.{stem}" not in SCHEMA:
                    raise ConfigError(f"{path}: unknown section [budget.{stem}]" + _closest(f"budget.{stem}", tables))
    out = {}
    for dotted, keys in SCHEMA.items():
        table = _table(config, dotted)
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [{dotted}] must be a table")
        for name in table:
            if name not in keys and f"{dotted}.{name}" in RENAMED:
                raise ConfigError(f"{path}: unknown setting {dotted}.{name}; it is now {RENAMED[f'{dotted}.{name}']}")
            if name not in keys:
                raise ConfigError(f"{path}: unknown setting {dotted}.{name}"
                                  + _closest(f"{dotted}.{name}", [f"{dotted}.{k}" for k in keys]))
        checked = {}
        for name, key in keys.items():
            if name in table:
                checked[name] = _value(table[name], key, f"{dotted}.{name}", path)
            elif key.default is REQUIRED:
                raise ConfigError(f"{path}: {dotted}.{name} is missing ({key.description})")
            elif key.default is not None:
                checked[name] = key.default
        target = out
        for part in dotted.split(".")[:-1]:
            target = target.setdefault(part, {})
        target[dotted.split(".")[-1]] = checked
    return out


def _value(value, key, name, path):
    where = f"{path}: {name} must be {KINDS[key.kind]}"
    if key.kind == "bool":
        ok = isinstance(value, bool)
    elif key.kind == "str":
        ok = isinstance(value, str) and (not key.choices or value in key.choices)
        where += f" ({', '.join(key.choices)})" if key.choices else ""
    elif key.kind == "schedule":
        ok = isinstance(value, list) and value and all(
            isinstance(p, list) and len(p) == 2 and isinstance(p[0], int) and not isinstance(p[0], bool)
            and p[0] > 0 and isinstance(p[1], (int, float)) and p[1] > 0 for p in value)
    elif key.kind == "tolerance":
        ok = isinstance(value, list) and len(value) == 2 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in value)
    else:
        ok = isinstance(value, (int, float) if key.kind == "number" else int) and not isinstance(value, bool)
        if ok and key.low is not None and value < key.low:
            ok = False
        if ok and key.high is not None and value > key.high:
            ok = False
        bounds = [f"at least {key.low:g}" if key.low is not None else "", f"at most {key.high:g}"
                  if key.high is not None else ""]
        where += (" " + " and ".join(b for b in bounds if b)) if any(bounds) else ""
    if not ok:
        raise ConfigError(f"{where}, not {value!r} ({key.description})")
    return value


def test_names():
    """{test module file name: {test function names}} of autograder/tests/ (discovery.test_modules)."""
    return {m.name: set(m.tests) for m in discovery.test_modules(folder=TESTS_DIR)}


def _override(config, item, path):
    key, sep, value = item.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(parts) or len(parts) < 2:
        raise ConfigError(f"override {item!r}: expected section.key=value")
    try:
        parsed = tomllib.loads(f"v = {value.strip()}")["v"]
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"override {item!r}: {value.strip()!r} is not a TOML value ({exc})") from None
    dotted = ".".join(parts[:-1])
    if parts[0] == "weights":
        raise ConfigError(f"override {item!r}: {WEIGHTS_MOVED}")
    if dotted not in SCHEMA or parts[-1] not in SCHEMA[dotted]:
        valid = [f"{t}.{k}" for t, keys in SCHEMA.items() for k in keys]
        raise ConfigError(f"override {item!r}: there is no setting {key.strip()}" + _closest(key.strip(), valid))
    table = config
    for part in parts[:-1]:
        table = table.setdefault(part, {})
    table[parts[-1]] = parsed


def _shown(value):
    return "required" if value is REQUIRED else "none" if value is None else repr(value)


def describe(config):
    """Every setting: name, value in force, default (``required``: config.toml must set it), description;
    a ``*`` marks a value config.toml sets (a required one, or one it changes from the default) (``python -m grader.config``)."""
    lines = [f"{config.get('_path', 'config')}: every setting, its value in force, its default and what it does"]
    for dotted, keys in SCHEMA.items():
        lines.append(f"[{dotted}]")
        table = _table(config, dotted)
        for name, key in keys.items():
            value = table.get(name)
            mark = " " if key.default is not REQUIRED and value == key.default else "*"
            lines.append(f" {mark}{name:<24} = {_shown(value):<16} default {_shown(key.default):<10} "
                         f"{key.description}")
    return "\n".join(lines)


def main(argv=None):
    from . import points
    argv = sys.argv[1:] if argv is None else argv
    try:
        print(describe(load(argv[0] if argv else None)))
        print(points.describe(points.collect()))
    except (ConfigError, RuntimeError) as exc:
        return f"grader.config: {exc}"
    return 0


if __name__ == "__main__":
    sys.exit(main())
