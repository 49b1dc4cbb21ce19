"""Assertions that turn student answers into verdicts with readable messages.

Every value from a worker is converted here into a fresh float64 ndarray (or
a Python float / int array); its original type is never trusted.
"""
import numpy as np


class GradeFailure(AssertionError):
    """A test failed; the message is shown to the student as it is."""


def fail(message):
    raise GradeFailure(message)


def shape_of(x):
    return f"shape {tuple(np.shape(x))}"


def _unwrap(value):
    if isinstance(value, dict) and "__torch__" in value:
        return value["__torch__"]
    return value


def kind_of(value):
    value_ = value
    if isinstance(value_, dict):
        for key in ("__torch__", "__object__", "__figure__", "__axes__"):
            if key in value_:
                return {"__torch__": "a tensor", "__figure__": "a figure", "__axes__": "an Axes"}.get(
                    key, f"an object of type {value_.get('__object__')}")
        return "a dict"
    if value_ is None:
        return "None"
    return f"a {type(value_).__name__}"


def as_array(value, what, shape=None):
    """A fresh float64 ndarray from a returned value, or a failure naming ``what``."""
    raw = _unwrap(value)
    try:
        if isinstance(raw, dict) or raw is None or isinstance(raw, str):
            raise TypeError
        arr = np.array(raw, dtype=np.float64, copy=True)
    except (TypeError, ValueError):
        fail(f"{what} returned {kind_of(value)}; expected an array of numbers"
             + (f" of shape {tuple(shape)}" if shape is not None else ""))
    if shape is not None and arr.shape != tuple(shape):
        fail(f"{what} returned an array of shape {arr.shape}; expected shape {tuple(shape)}")
    return arr


def as_scalar(value, what):
    arr = as_array(value, what)
    if arr.size != 1:
        fail(f"{what} returned an array of shape {arr.shape}; expected a single number")
    return float(arr.reshape(-1)[0])


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
    actual = as_array(value, what)
    context = f" for {given}" if given else ""
    if actual.shape != expected.shape:
        fail(f"{what}{context} returned shape {actual.shape}; expected {expected.shape}."
             + (f"\nHint: {hint}" if hint else ""))
    if not np.all(np.isfinite(actual)) and np.all(np.isfinite(expected)):
        fail(f"{what}{context} returned NaN or infinite values." + (f"\nHint: {hint}" if hint else ""))
    count, lines = first_differences(actual, expected, rtol, atol)
    if count:
        fail(f"{what}{context}: {count} of {expected.size} values differ from the expected ones:\n"
             + "\n".join(lines) + (f"\nHint: {hint}" if hint else ""))
    return actual


def describe_input(name, arr):
    arr = np.asarray(arr)
    return f"{name} of {shape_of(arr)} ({arr.dtype})"
