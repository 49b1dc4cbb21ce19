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
