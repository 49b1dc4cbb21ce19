"""The worker protocol carries plain data only, bounded in what it decodes to; the grader's reply channel
(client.Worker) holds at most one answer per request and stops a worker that sends outside a call."""
import io
import json
import os
import sys

import numpy as np
import pytest

from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "autograder"))
from grader import protocol  # noqa: E402
from grader.protocol import Op  # noqa: E402


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


# -- what a message decodes to ---------------------------------------------------------------------

REPLY_LIMIT = 32 << 20          # config.toml's [limits] reply_mb, as session.py passes it


def compact_frame(header_obj, arrays=()):
    """A frame as a hostile worker may write it: compact JSON (more references per header byte)."""
    import json
    import struct
    head = json.dumps(header_obj, separators=(",", ":")).encode()
    tail = b"".join(struct.pack(">Q", a.nbytes) + a.tobytes() for a in arrays)
    return struct.pack(">Q", len(head)) + head + tail


def test_the_limit_is_the_configured_reply_size():
    from grader import config as config_mod
    assert config_mod.load()["limits"]["reply_mb"] << 20 == REPLY_LIMIT


def test_one_array_referred_to_80000_times_is_refused_before_anything_is_built():
    """A 1 MB reply naming one small array 80,000 times would decode (and be converted) into 61 MB of
    float64: refused from the header, before the array's bytes are read, the limit named."""
    import tracemalloc
    array = np.zeros(96)
    raw = compact_frame({"body": {"ok": True, "id": 1, "value": [{"__nd__": 0}] * 80_000},
                         "arrays": [{"dtype": "float64", "shape": [96]}]}, [array])
    assert len(raw) < protocol.MAX_HEADER + 1000
    stream = CountingStream(raw)
    tracemalloc.start()
    try:
        with pytest.raises(protocol.ProtocolError, match=f"over the limit of {REPLY_LIMIT:,} bytes"):
            protocol.read_message(stream, REPLY_LIMIT, protocol.MAX_HEADER)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert stream.read_total == len(raw) - 8 - array.nbytes, "the array's bytes were read"
    assert peak < 24 << 20, peak          # the parsed JSON itself (16 MB); decoded, 80,000 x 768 bytes = 61 MB


def test_an_array_referred_to_twice_is_refused_even_within_the_limit():
    """Decoded arrays each own their buffer: two references to one array would alias each other."""
    raw = compact_frame({"body": [{"__nd__": 0}, {"x": {"__nd__": 0}}], "arrays": [{"dtype": "uint8", "shape": [4]}]},
                        [np.zeros(4, np.uint8)])
    with pytest.raises(protocol.ProtocolError, match="referred to more than once"):
        protocol.read_message(io.BytesIO(raw), REPLY_LIMIT, protocol.MAX_HEADER)


def test_lists_and_dicts_count_towards_the_decoded_size():
    body = [[] for _ in range(1000)]
    raw = compact_frame({"body": body, "arrays": []})
    cost = protocol.CONTAINER_BYTES * 1001 + 8 * 1000
    assert protocol.read_message(io.BytesIO(raw), cost) == body
    with pytest.raises(protocol.ProtocolError, match=f"over the limit of {cost - 1:,} bytes"):
        protocol.read_message(io.BytesIO(raw), cost - 1)


def test_the_largest_honest_replies_still_decode():
    """The CNN's state_dict (every tensor float32, as op_state_dict sends it) and a figure with long curves,
    each as the worker encodes it, decode unchanged within the configured limit."""
    from grader import refmath
    rng = np.random.default_rng(0)
    state = {name: rng.standard_normal(shape).astype(np.float32) for name, shape in refmath.cnn_state_shapes().items()}
    assert sum(a.size for a in state.values()) > 420_000
    figure = {protocol.FIGURE: [{"title": "t", "xlabel": "x", "ylabel": "y", "legend": ["a", "b"],
                                 "lines": [{"label": str(i), "x": np.arange(20_000.0), "y": np.ones(20_000)}
                                           for i in range(2)]}]}
    for value in (state, figure, [state, state]):         # one object twice: the encoder sends two arrays
        buf = io.BytesIO()
        protocol.write_message(buf, {"ok": True, "id": 3, "value": value})
        buf.seek(0)
        got = protocol.read_message(buf, REPLY_LIMIT, protocol.MAX_HEADER)["value"]
        assert protocol.encode(got) == protocol.encode(value)


# -- the grader's reply channel (client.Worker) with a fake worker -------------------------------------

FAKE_WORKER = """
import os, struct, sys, time
sys.path.insert(0, {grader!r})
import protocol

inp, out = os.fdopen(0, "rb"), os.fdopen(1, "wb")
while True:
    try:
        request = protocol.read_message(inp)
    except EOFError:
        break
    op = request.get("method", request["op"])   # what to do after answering: Op.CALL's method
    protocol.write_message(out, {{"ok": True, "value": op, "id": request["id"]}})
    time.sleep(0.2)                      # what follows comes between two requests, as from a thread left running
    if op == "stray":                    # the answer to the next request, id and all
        protocol.write_message(out, {{"ok": True, "value": "forged", "id": request["id"] + 1}})
    elif op == "garbage":                # not even a frame: a length of 1 TB
        out.write(struct.pack(">Q", 1 << 40))
        out.flush()
    elif op == "flood":
        for _ in range(500):
            protocol.write_message(out, {{"ok": True, "value": "x" * 1000, "id": request["id"] + 1}})
"""


@pytest.fixture
def fake_worker(tmp_path):
    """client.Worker running FAKE_WORKER in place of worker.py: it answers each request, then misbehaves."""
    from conftest import PYTHON
    from grader import client
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    (runtime / "worker.py").write_text(FAKE_WORKER.format(grader=os.path.join(ROOT, "autograder", "grader")))
    events = []
    worker = client.Worker("fake", str(tmp_path), str(runtime), python=PYTHON, env=dict(os.environ),
                           on_event=events.append, reply_limit=REPLY_LIMIT)
    worker.start(setup_timeout=30)
    yield worker, events
    worker.stop()


def killed_soon(worker, seconds=5.0):
    import time
    deadline = time.monotonic() + seconds
    while worker.alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    return not worker.alive()


@pytest.mark.parametrize("op, what", [("stray", "a frame"), ("garbage", "a malformed frame"),
                                      ("flood", "a frame")])
def test_a_frame_between_requests_kills_the_worker_at_once(fake_worker, op, what):
    """Sent while no request waits (even with the next request's id): the worker is killed before the
    grader asks anything more, the report says why, and every later request fails, fatal, in plain words."""
    from grader import client
    worker, events = fake_worker
    assert worker.request(Op.CALL, 10, method=op) == op
    assert killed_soon(worker), "the worker still runs after a frame nobody asked for"
    assert [e for e in events if e.startswith(f"unsolicited frame: the worker sent {what}")], events
    for _ in range(2):
        with pytest.raises(client.WorkerFailure, match="sent data to the grader outside a call") as info:
            worker.request(Op.CALL, 10, method="ping")
        assert info.value.fatal and "Traceback" not in str(info.value)


def test_the_reply_queue_is_bounded_whatever_the_worker_sends(fake_worker):
    """500 frames after one answer: the grader holds at most REPLY_QUEUE of them, at every moment."""
    import threading
    from grader import client
    worker, _ = fake_worker
    assert worker.channel.replies.maxsize == client.REPLY_QUEUE
    sizes, done = [], threading.Event()

    def watch(replies=worker.channel.replies):
        while not done.is_set():
            sizes.append(replies.qsize())
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        assert worker.request(Op.CALL, 10, method="flood") == "flood"
        assert killed_soon(worker)
    finally:
        done.set()
        watcher.join()
    assert sizes and max(sizes) <= client.REPLY_QUEUE
    assert worker.channel.unsolicited


def test_after_a_frame_between_requests_the_files_later_tests_fail_with_the_message(fake_worker):
    """session.StudentFile does not restart a worker killed for an unsolicited frame: the test that asks
    next fails with the plain message, and so does every later one (the file is marked broken)."""
    from types import SimpleNamespace
    from grader import session as session_mod
    from grader.checks import GradeFailure
    worker, _ = fake_worker
    assert worker.request(Op.CALL, 10, method="stray") == "stray"
    assert killed_soon(worker)
    clock = SimpleNamespace(limit=lambda stem, seconds: (seconds, False))
    stub = SimpleNamespace(requests=0, clock=clock, scratch={}, config={"time_limits": {"call": 5}})
    student_file = session_mod.StudentFile(stub, "numpy_ann")
    student_file.worker = worker
    with pytest.raises(GradeFailure) as info:
        student_file.request(Op.CALL, None, what="_relu")
    assert str(info.value).startswith("_relu: this file's tests stopped: your code sent data to the grader "
                                      "outside a call (for example from a thread left running)")
    with pytest.raises(session_mod.Unavailable, match="outside a call.*Every later test of numpy_ann.py fails"):
        student_file.request(Op.CALL, None, what="_softmax")


# -- the vocabulary: protocol.Op, the one table of requests, on both sides ---------------------------------

GRADER = os.path.join(ROOT, "autograder", "grader")


@pytest.fixture(scope="module")
def worker_module():
    """worker.py imported as the worker runs it (a script beside protocol.py and sandbox.py); the test process's
    sys.path and sys.modules are left as they were."""
    import importlib.util
    path, modules = list(sys.path), dict(sys.modules)
    try:
        spec = importlib.util.spec_from_file_location("nnag_worker_under_test", os.path.join(GRADER, "worker.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = path
        for name in set(sys.modules) - set(modules):
            del sys.modules[name]
    return module


def handler_fields(method):
    """The request fields a worker handler reads: request["x"], request.get("x"), request.pop("x"), and those of
    the helpers it hands the request to (target: "target"; module_of: "target" and "attr")."""
    import ast
    import inspect
    import textwrap
    helpers = {"target": {"target"}, "module_of": {"target", "attr"}}
    read = set()
    for node in ast.walk(ast.parse(textwrap.dedent(inspect.getsource(method)))):
        if isinstance(node, ast.Subscript) and getattr(node.value, "id", None) == "request":
            read.add(node.slice.value)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if getattr(node.func.value, "id", None) == "request" and node.func.attr in ("get", "pop"):
                read.add(node.args[0].value)
            elif node.func.attr in helpers and any(getattr(a, "id", None) == "request" for a in node.args):
                read |= helpers[node.func.attr]
    return read


def test_the_op_table_and_the_worker_handlers_agree_both_ways(worker_module, tmp_path):
    """Every op of protocol.Op has a handler in the worker's table (Worker.handlers) and every handler (an
    ``op_<name>`` method of the worker's classes) an op; each op declares exactly the fields its handler reads."""
    table = worker_module.Worker(str(tmp_path), "student").handlers
    handlers = {op.value: method for op, method in table.items()}
    assert set(handlers) == {op.value for op in Op}
    assert all(method.__name__ == "op_" + name for name, method in handlers.items())
    classes = [c for c in vars(worker_module).values() if isinstance(c, type) and c.__module__ == worker_module.__name__]
    defined = {f for cls in classes for name, f in vars(cls).items() if name.startswith("op_")}
    assert defined == {method.__func__ for method in handlers.values()}
    assert {op.value: set(op.fields) for op in Op} == {name: handler_fields(m) for name, m in handlers.items()}


def test_the_worker_refuses_an_op_or_a_field_the_table_does_not_declare(worker_module, tmp_path):
    """An unknown op, an undeclared field, setup twice or anything before setup: a ProtocolError answer to that
    request (its id kept, so the grader reads it as the answer), no handler run."""
    worker = worker_module.Worker(str(tmp_path), "student")
    first = worker.handle({"op": "import", "id": 1})
    assert first["error"]["message"] == "op import before setup" and first["id"] == 1
    worker.requests = 1                                # as after the setup
    for request, says in [({"op": "nope"}, "unknown op nope"), ({"op": ["call"]}, "unknown op ['call']"),
                          ({"op": "setup"}, "setup only comes first"),
                          ({"op": "seed", "seed": 1, "evil": 2}, "op seed takes no field evil")]:
        reply = worker.handle(dict(request, id=7))
        assert reply["ok"] is False and reply["id"] == 7
        assert reply["error"]["type"] == "ProtocolError" and reply["error"]["message"] == says


def test_the_grader_sends_only_declared_ops_and_fields():
    """client.Worker.request takes a protocol.Op and only its fields: anything else is refused before a byte is
    sent (the worker here was never started)."""
    from grader import client
    worker = client.Worker("m", "/nonexistent", "/nonexistent")
    name = Op.CALL.value                           # the op's name on the wire, not the op
    with pytest.raises(protocol.ProtocolError, match="'call' is not a protocol.Op"):
        worker.request(name, 1, target="module", method="f")
    with pytest.raises(protocol.ProtocolError, match="op seed takes no field sed"):
        worker.request(Op.SEED, 1, sed=3)
    assert worker.next_id == 0


def test_no_request_names_its_op_by_a_bare_string():
    """The grader's modules and the self-tests send requests through protocol.Op only."""
    import ast
    files = [os.path.join(GRADER, n) for n in ("session.py", "client.py")]
    files += [os.path.join(ROOT, "tests", n) for n in os.listdir(os.path.join(ROOT, "tests")) if n.endswith(".py")]
    bare = []
    for path in files:
        with open(path, encoding="utf-8") as fh:
            tree = ast.parse(fh.read())
        bare += [f"{os.path.basename(path)}:{node.lineno}" for node in ast.walk(tree)
                 if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                 and node.func.attr == "request" and node.args and isinstance(node.args[0], ast.Constant)]
    assert bare == []


# -- error kinds: classified in the worker, read by the grader as untrusted data -------------------------------

class _EvilErrno(OSError):
    @property
    def errno(self):
        raise RuntimeError("no errno for you")


@pytest.mark.parametrize("exc, kind", [
    (MemoryError(), "memory"),
    (type("_ArrayMemoryError", (MemoryError,), {})("Unable to allocate 8.00 GiB"), "memory"),
    (RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: you tried to "
                  "allocate 8589934592 bytes."), "memory"),
    (type("OutOfMemoryError", (RuntimeError,), {})("CUDA error"), "memory"),
    (OSError(27, "File too large"), "file_too_large"),
    (OSError("File too large"), "other"),                 # the text alone is not a kind
    (SystemExit(1), "exit"), (KeyboardInterrupt(), "exit"), (GeneratorExit(), "exit"),
    (PermissionError(13, "Permission denied"), "permission"),
    (RecursionError("maximum recursion depth exceeded"), "recursion"),
    (__import__("pickle").UnpicklingError("Weights only load failed"), "unpickling"),
    (ValueError("shapes (2,3) and (4,5) not aligned"), "other"),
    (_EvilErrno("an errno that raises"), "other"),
])
def test_the_worker_sends_the_kind_of_what_was_raised(worker_module, tmp_path, exc, kind):
    described = worker_module.Worker(str(tmp_path), "student").describe_error(exc)
    assert described["kind"] == kind
    assert described["type"] == type(exc).__name__


def test_the_workers_own_refusals_are_of_kind_protocol(worker_module, tmp_path):
    worker = worker_module.Worker(str(tmp_path), "student")
    assert worker.handle({"op": "nope", "id": 1})["error"]["kind"] == "protocol"


@pytest.mark.parametrize("value", [k.value for k in protocol.ErrorKind]
                         + ["MEMORY", " memory", "memory\n", "", None, 3, ["memory"], {"memory": 1},
                            type("Text", (str,), {})("memory")])
def test_the_grader_reads_a_kind_only_when_it_is_a_declared_name(value):
    expected = value if type(value) is str and value in {k.value for k in protocol.ErrorKind} else "other"
    assert protocol.ErrorKind.of(value).value == expected


@pytest.mark.parametrize("kind", [k.value for k in protocol.ErrorKind] + ["bogus", None, ["memory"], {"k": 1}])
def test_a_forged_kind_changes_only_which_of_the_graders_words_the_student_reads(kind):
    """The worker runs the student's code, which can send any kind: every error reply fails its test with no
    points and leaves the file usable whatever the kind; only a declared "memory" adds the grader's hint, and
    a declared "protocol" (the worker's own refusal of a reply) is worded as the grader's refusal."""
    from types import SimpleNamespace
    from grader import client
    from grader import session as session_mod
    from grader.checks import GradeFailure

    class Forging:
        changed, unsolicited, limit_hit, setup = [], False, None, {"limits": {"memory_mb": 400}}

        def alive(self):
            return True

        def request(self, op, timeout, **fields):
            raise client.StudentError({"type": "ValueError", "message": "bad", "where": None, "kind": kind})

    clock = SimpleNamespace(limit=lambda stem, seconds: (seconds, False))
    stub = SimpleNamespace(requests=0, clock=clock, scratch={}, config={"time_limits": {"call": 5}})
    student_file = session_mod.StudentFile(stub, "numpy_ann")
    student_file.worker = Forging()
    hint = "\nThe grader gives your code at most 400 MB of memory; use less." if kind == "memory" else ""
    for _ in range(2):
        with pytest.raises(GradeFailure) as info:
            student_file.request(Op.CALL, None, what="_relu", target="module", method="_relu")
        assert type(info.value) is GradeFailure and getattr(info.value, "fraction", 0.0) == 0.0
        assert str(info.value) == ("_relu: " + client.refused_answer("bad") if kind == "protocol"
                                   else "_relu raised ValueError: bad" + hint)
        assert student_file.broken is None


def test_the_kind_crosses_from_a_real_worker_and_a_forged_one_reads_as_other(tmp_path):
    """End to end: a MemoryError arrives as memory, a ValueError as other; student code that rewrites the worker's
    error replies gets the declared kind it names (only ever a choice among the grader's words, see above) and
    other for any undeclared one."""
    from conftest import PYTHON
    from grader import client, config as config_mod
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (scratch / "student.py").write_text(
        "import sys\n"
        "def hog():\n    raise MemoryError('no room')\n"
        "def wrong():\n    raise ValueError('wrong')\n"
        "def forge(kind):\n"
        "    worker = sys.modules['__main__'].Worker\n"
        "    worker.describe_error = lambda self, exc: {'type': 'ValueError', 'message': 'x', 'kind': kind}\n"
        "    raise ValueError('forged')\n")
    limits = dict(config_mod.load()["limits"], processes=None)
    worker = client.Worker("student", str(scratch), client.prepare_runtime(str(tmp_path / "runtime")), python=PYTHON,
                           env=dict(os.environ), setup={"limits": limits, "protected": [], "writable": [str(scratch)]})
    kinds = []
    try:
        worker.start()
        worker.request(Op.IMPORT, 60)
        for method, args in (("hog", []), ("wrong", []), ("forge", ["memory"]), ("forge", ["root"])):
            with pytest.raises(client.StudentError) as info:
                worker.request(Op.CALL, 30, target="module", method=method, args=args)
            kinds.append(info.value.kind)
    finally:
        worker.stop()
    assert kinds == [protocol.ErrorKind.MEMORY, protocol.ErrorKind.OTHER, protocol.ErrorKind.MEMORY,
                     protocol.ErrorKind.OTHER]


# replies of every shape Codec.to_plain makes plain: numbers, text, containers, arrays (sent apart), nesting
REPLY_SHAPES = [0.5, -1e300, float("nan"), 7, -12345678901234567890, True, None, "", "é" * 50, "x", [], {}, [[]],
                {"": 0}, {1: "a", (2, 3): [1.5]}, (1, 2.0, "3"), np.float32(1.5), np.int64(3), np.bool_(True),
                np.arange(6.0).reshape(2, 3), np.array([[1, "a"], [None, 2.5]], dtype=object),
                [np.zeros(3), {"k": np.ones(2)}], {"nested": [[{"a": [1, 2, [3, {"b": None}]]}]]},
                [[0.0] * 50] * 40, {f"key{i}": [i, str(i), None] for i in range(300)}]


def test_the_workers_count_of_a_replys_json_is_never_above_its_real_size(worker_module):
    """The worker gives a reply up once its count of the JSON passes the grader's limit (Codec.spend): the count
    must be a lower bound, or an honest reply under the limit would be refused.  For each shape the count is at
    most the JSON the reply carries; the same check fails when a byte counted becomes two."""
    worker_module.load_libraries()           # numpy, as the worker loads it after its setup
    codec = worker_module.Codec({}, lambda *args: None)

    def sizes():
        for value in REPLY_SHAPES:
            plain = codec.to_plain(value)
            yield codec.floor, len(json.dumps(worker_module.protocol._encode(plain, []), allow_nan=True))
    assert all(0 < floor <= real for floor, real in sizes()), list(sizes())
    real_spend = codec.spend
    codec.spend = lambda size: real_spend(2 * size)
    assert any(floor > real for floor, real in sizes())


def test_a_reply_sure_to_be_over_the_limit_is_given_up_before_it_is_built(worker_module, tmp_path):
    """3 million floats in a list are refused before they are made plain (the count passes the limit), and the
    worker answers with its own refusal (kind protocol); a list of strings just under the limit is sent."""
    worker_module.load_libraries()
    codec = worker_module.Codec({}, lambda *args: None)
    limit = worker_module.protocol.MAX_HEADER
    huge = [float(i) for i in range(3_000_000)]
    with pytest.raises(worker_module.protocol.ReplyTooLarge, match=f"over the limit of {limit:,} bytes"):
        codec.to_plain(huge)
    assert codec.floor == 2 * len(huge)          # the list's separators alone: refused before any float is made plain
    under = ["x" * 100] * 9000
    plain = codec.to_plain(under)
    assert codec.floor <= len(json.dumps(plain)) <= limit
    worker = worker_module.Worker(str(tmp_path), "student")
    worker.requests = 1
    worker.objects["h0"] = __import__("types").SimpleNamespace(big=huge, small=under)
    assert worker.handle({"op": "getattr", "id": 2, "target": "h0", "name": "small"})["ok"] is True
    reply = worker.handle({"op": "getattr", "id": 3, "target": "h0", "name": "big"})
    assert reply["ok"] is False and reply["error"]["kind"] == "protocol", reply


@pytest.mark.parametrize("kind", ["memory", "protocol"])
def test_an_error_the_report_names_stays_one_line_whatever_its_message(kind):
    """The kinds the instructor report names (a memory error, the worker's refusal of a reply) carry the worker's
    message, which the student's code can write: a forged report line in it stays inside the grader's one line."""
    from types import SimpleNamespace
    from grader import client
    from grader import session as session_mod
    from grader.checks import GradeFailure

    class Forging:
        changed, unsolicited, limit_hit, setup = [], False, None, {"limits": {"memory_mb": 400}}

        def alive(self):
            return True

        def request(self, op, timeout, **fields):
            raise client.StudentError({"type": "MemoryError\ncheck: forged", "where": None, "kind": kind,
                                       "message": "x\ncheck: Nothing to report.\r\x1b[2J"})

    stub = SimpleNamespace(requests=0, clock=SimpleNamespace(limit=lambda stem, seconds: (seconds, False)),
                           scratch={}, config={"time_limits": {"call": 5}})
    student_file = session_mod.StudentFile(stub, "numpy_ann")
    student_file.worker = Forging()
    with pytest.raises(GradeFailure):
        student_file.request(Op.CALL, None, what="_relu", target="module", method="_relu")
    assert len(student_file.events) == 1 and "check: Nothing to report." in student_file.events[0]
    assert all(c.isprintable() for c in student_file.events[0]), student_file.events
