"""The run's clock (grader/clock.py): shares, charging, limits, and the run order of the tests.

A fake clock drives time, so these tests take no time and do not depend on the machine's load."""
import os
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "autograder"))
from grader import clock as clock_mod  # noqa: E402
from grader import config as config_mod  # noqa: E402

FILES = ("a", "b", "c")


class FakeTime:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t

    def advance(self, seconds):
        self.t += seconds


def make(total=100.0, shares=None, scale=1.0):
    now = FakeTime()
    shares = shares or {"a": 20.0, "b": 30.0, "c": 50.0}
    return clock_mod.Clock(total, now() + total, shares, scale, now=now), now


def test_shares_give_the_minimum_then_divide_the_rest_by_weight():
    got = clock_mod.shares(540, 40, {"a": 1, "b": 3}, ["a", "b"])
    assert got == {"a": 40 + 460 * 0.25, "b": 40 + 460 * 0.75}
    assert sum(got.values()) == pytest.approx(540)
    even = clock_mod.shares(60, 40, {"a": 1, "b": 3}, ["a", "b"])       # the minimum cannot be met: equal parts
    assert even == {"a": 30.0, "b": 30.0}
    assert clock_mod.shares(540, 40, {"a": 1, "b": 3, "c": 9}, ["b"]) == {"b": 540.0}   # only the graded files


def test_a_file_may_not_spend_what_the_unfinished_files_hold():
    clock, now = make()
    with clock.charging("a"):
        assert clock.available("a") == pytest.approx(20)                 # 100 - 30 - 50
        assert clock.limit("a", 30) == (pytest.approx(20), True)         # cut to what is left for it
        assert clock.limit("a", 5) == (5, False)
        now.advance(19.8)
        with pytest.raises(clock_mod.OutOfTime) as refused:            # refused only when (next to) none is left
            clock.limit("a", 5)
    assert "a.py" in str(refused.value) and "share" in str(refused.value)
    assert clock.spent("a") == pytest.approx(19.8)
    assert clock.available("b") == pytest.approx(30)                     # b and c kept their shares
    assert clock.available("c") == pytest.approx(50)


def test_unused_time_goes_to_the_files_after_and_overruns_to_nobody():
    clock, now = make()
    with clock.charging("a"):
        now.advance(5)
    clock.finish("a")                                                  # a leaves 15 s unused
    assert clock.available("b") == pytest.approx(100 - 5 - 50)          # its 30 and a's 15
    with clock.charging("b"):
        now.advance(45)
    clock.finish("b")
    assert clock.available("c") == pytest.approx(50)                     # c's share is whole
    assert clock.limit("c", 1000) == (pytest.approx(50), True)


def test_nested_charges_go_to_the_innermost_file():
    clock, now = make()
    with clock.charging("b"):
        now.advance(2)
        with clock.charging("a"):                                      # closing a's worker during b's test
            now.advance(3)
        now.advance(4)
    assert (clock.spent("a"), clock.spent("b")) == (pytest.approx(3), pytest.approx(6))


def test_the_total_running_out_is_named_as_such():
    clock, now = make()
    clock.finish("a"), clock.finish("b")
    now.advance(99.8)
    with pytest.raises(clock_mod.OutOfTime) as refused:
        clock.limit("c", 1)
    assert "total time (100 s" in str(refused.value)


def test_limits_scale_with_the_cpu_quota():
    assert clock_mod.cpu_scale(0.5) == (2.0, pytest.approx(clock_mod.cpu_scale(0.5)[1]))
    assert clock_mod.cpu_scale(0.5)[0] == 2.0 and "0.5" in clock_mod.cpu_scale(0.5)[1]
    assert clock_mod.cpu_scale(0.1)[0] == 4.0                            # at most largest_scale
    assert clock_mod.cpu_scale(2)[0] == 1.0 and clock_mod.cpu_scale(None)[0] == 1.0
    assert clock_mod.cpu_scale(0.5, enabled=False)[0] == 1.0
    clock, _ = make(scale=2.0)
    assert clock.limit("c", 10) == (20.0, False)


def test_config_declares_a_share_for_every_file():
    config = config_mod.load()
    from grader.assignment import STEMS
    assert set(config["time_shares"]) == set(STEMS)
    t = config["time_limits"]
    assert t["file_minimum"] * len(STEMS) < t["total"]
    with pytest.raises(config_mod.ConfigError, match="time_shares.numpy_ann"):
        config_mod.load(overrides=["time_shares.numpy_ann=0"])


class FakeItem:
    """What plugin.run_order and record.auto_numbers read of a pytest item."""

    def __init__(self, module, name, kind="public", training=False, cost=None, number=None):
        self.fspath = os.path.join(ROOT, "autograder", "tests", kind, module)
        self.nodeid = f"{kind}/{module}::{name}"
        self.markers = {}
        if training:
            self.markers["training"] = ()
        if cost is not None:
            self.markers["cost"] = (cost,)
        if number is not None:
            self.markers["number"] = (number,)

    def get_closest_marker(self, name):
        if name not in self.markers:
            return None
        return type("Mark", (), {"args": self.markers[name]})()


def test_quick_tests_run_first_then_training_by_cost_and_numbers_follow_the_files():
    from grader import plugin, record
    items = [
        FakeItem("test_numpy_ann.py", "shapes"),
        FakeItem("test_numpy_ann_private.py", "accuracy", "private", training=True, cost=3.5),
        FakeItem("test_numpy_ann_private.py", "backward", "private"),
        FakeItem("test_pytorch_cnn.py", "architecture"),
        FakeItem("test_pytorch_cnn_private.py", "accuracy", "private", training=True, cost=53),
        FakeItem("test_pytorch_cnn_private.py", "judgement", "private", training=True, cost=2),
        FakeItem("test_fashionmnist_private.py", "accuracy", "private", training=True, cost=3.5),
        FakeItem("test_fashionmnist.py", "predict", number="4.9"),
    ]
    order = [i.nodeid.split("/")[1] for i in plugin.run_order(items)]
    assert order == ["test_numpy_ann.py::shapes", "test_numpy_ann_private.py::backward",
                     "test_pytorch_cnn.py::architecture", "test_fashionmnist.py::predict",
                     "test_pytorch_cnn_private.py::judgement", "test_numpy_ann_private.py::accuracy",
                     "test_fashionmnist_private.py::accuracy", "test_pytorch_cnn_private.py::accuracy"]
    assert plugin.run_order(list(reversed(items)))[-1].nodeid.endswith("test_pytorch_cnn_private.py::accuracy")
    numbers = record.auto_numbers(items)        # by file, public first, as declared: never the run order
    assert numbers == {"public/test_numpy_ann.py::shapes": "1.1", "private/test_numpy_ann_private.py::accuracy": "1.2",
                       "private/test_numpy_ann_private.py::backward": "1.3",
                       "public/test_pytorch_cnn.py::architecture": "3.1",
                       "private/test_pytorch_cnn_private.py::accuracy": "3.2",
                       "private/test_pytorch_cnn_private.py::judgement": "3.3",
                       "private/test_fashionmnist_private.py::accuracy": "4.1"}
