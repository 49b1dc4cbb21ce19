"""The worker protocol carries plain data only."""
import io
import os
import sys

import numpy as np
import pytest

from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "autograder"))
from grader import protocol  # noqa: E402


def roundtrip(obj):
    buf = io.BytesIO(protocol.encode(obj))
    return protocol.read_message(buf)


def test_arrays_and_json_roundtrip_as_fresh_arrays():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    got = roundtrip({"x": a, "n": [1, 2.5, None, "s", True], "scalar": np.array(3, dtype=np.int64)})
    assert got["x"].dtype == np.float32 and np.array_equal(got["x"], a) and got["x"].flags.writeable
    assert got["scalar"].shape == () and int(got["scalar"]) == 3
    assert got["n"] == [1, 2.5, None, "s", True]


@pytest.mark.parametrize("bad", [np.array([object()], dtype=object), object(), {1: lambda: 0}])
def test_objects_cannot_be_sent(bad):
    with pytest.raises(protocol.ProtocolError):
        protocol.encode({"v": bad})


def test_lying_array_header_is_refused():
    data = bytearray(protocol.encode({"x": np.zeros(4)}))
    data = data.replace(b'"shape": [4]', b'"shape": [9]')
    with pytest.raises(protocol.ProtocolError):
        protocol.read_message(io.BytesIO(bytes(data)))


def test_oversized_message_is_refused():
    with pytest.raises(protocol.ProtocolError):
        protocol.read_message(io.BytesIO(protocol.encode({"x": np.zeros(1000)})), limit=100)


@pytest.mark.parametrize("dtype", sorted(protocol.ALLOWED_DTYPES))
def test_streamed_write_equals_the_encoded_message(dtype):
    """write_message sends arrays from their own memory; what arrives is the same for every dtype and layout."""
    a = (np.arange(12).reshape(3, 4) % 3).astype(dtype)
    for x in (a, a[:, ::2], np.asarray(a[1, 2]), np.zeros((0, 4), dtype)):
        buf = io.BytesIO()
        protocol.write_message(buf, {"x": x})
        assert buf.getvalue() == protocol.encode({"x": x})
        got = protocol.read_message(io.BytesIO(buf.getvalue()))["x"]
        assert got.dtype == np.asarray(x).dtype and got.shape == np.shape(x) and np.array_equal(got, x)


class CountingStream(io.BytesIO):
    """Records how many bytes were read: a refusal must come before the arrays' bytes are."""

    def readinto(self, buf):
        n = super().readinto(buf)
        self.read_total = getattr(self, "read_total", 0) + n
        return n


def frame(header_obj, tail=b""):
    import json
    import struct
    head = json.dumps(header_obj).encode()
    return struct.pack(">Q", len(head)) + head + tail


@pytest.mark.parametrize("header, why", [
    ({"body": None, "arrays": [{"dtype": "uint8", "shape": [1]}] * (protocol.MAX_ARRAYS + 1)}, "more than"),
    ({"body": None, "arrays": [{"dtype": "uint8", "shape": [1] * (protocol.MAX_NDIM + 1)}]}, "refused"),
    ({"body": None, "arrays": [{"dtype": "float64", "shape": [1 << 20, 1 << 20]}]}, "over the limit"),
    ({"body": None, "arrays": [{"dtype": "uint8", "shape": [4]}, {"dtype": "float64", "shape": [-1]}]}, "refused"),
])
def test_array_shapes_are_checked_before_any_array_byte_is_read(header, why):
    """The second spec is bad: the first array's bytes (present in the stream) are never read."""
    raw = frame(header, b"\0" * 64)
    stream = CountingStream(raw)
    with pytest.raises(protocol.ProtocolError, match=why):
        protocol.read_message(stream, limit=1 << 30)
    assert stream.read_total == len(frame(header)), "array bytes were read before the check"


def test_a_header_nested_too_deeply_is_a_protocol_error():
    nested = b"[" * 200_000 + b"]" * 200_000
    import struct
    with pytest.raises(protocol.ProtocolError, match="nested too deeply|malformed"):
        protocol.read_message(io.BytesIO(struct.pack(">Q", len(nested)) + nested), header_limit=1 << 20)


def test_reply_markers_are_named_in_one_place():
    assert protocol.marker_of({protocol.TORCH: 1, "dtype": "x"}) == protocol.TORCH
    assert protocol.marker_of({"plain": 1}) is None
    worker = open(os.path.join(ROOT, "autograder", "grader", "worker.py")).read()
    checks = open(os.path.join(ROOT, "autograder", "grader", "checks.py")).read()
    for marker in (protocol.REF, protocol.DATA, protocol.ONEHOT, protocol.TENSOR, protocol.TORCH,
                   protocol.OBJECT, protocol.FIGURE, protocol.AXES):
        assert f'"{marker}"' not in worker and f'"{marker}"' not in checks, marker
