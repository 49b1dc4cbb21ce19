"""The grader <-> worker wire format: plain data only, never pickle.

A message is an 8-byte big-endian length, a UTF-8 JSON header of that length,
then the raw bytes of each numpy array the header refers to.  In the JSON an
array appears as {"__nd__": i}; header["arrays"][i] gives its dtype and shape.
Only numeric and boolean dtypes cross.  Decoded arrays are fresh and writable, each in a buffer of
its own: an array is referred to once (the encoder never repeats one).  What a message decodes to
is bounded too, before anything is built: ``limit`` bytes, each array counted every time it is
referred to and each list or dict at CONTAINER_BYTES plus 8 per item.

numpy is imported by the functions that read and write arrays, not with this module: the worker
imports it for ``Op`` before it confines itself, and numpy starts OpenBLAS's threads at import
(worker.load_libraries).
"""
import enum
import json
import struct
from types import MappingProxyType

ALLOWED_DTYPES = frozenset({"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                            "float16", "float32", "float64"})
MAX_MESSAGE = 1 << 31  # bytes; a larger frame is a protocol error
MAX_HEADER = 1 << 20   # bytes of JSON in a reply the grader reads (arrays travel as raw bytes, apart)
MAX_ARRAYS = 4096      # arrays in one message
MAX_NDIM = 8           # dimensions of one array
CONTAINER_BYTES = 64   # what one decoded list or dict costs at least (CPython: 56 and 64 bytes), plus 8 per item



class Op(enum.Enum):
    """Every request the grader may send, each with the fields it takes besides "op" and "id".

    ``Op.CALL.value`` ("call") is the name on the wire, ``Op.CALL.fields`` the fields.  The grader sends
    only these (client.Worker.request takes an Op and refuses a field it does not list); the worker
    answers each with the ``op_<name>`` method its table maps it to (worker.Worker.handlers) and refuses
    any other name or field as a protocol error.  tests/test_protocol.py checks that the two sides agree
    with this table both ways."""

    def __new__(cls, wire, *fields):
        member = object.__new__(cls)
        member._value_ = wire
        member.fields = frozenset(fields)
        return member

    # the worker confines itself (the first request, only then), imports the student's module
    SETUP = "setup", "limits", "protected", "writable", "threads", "landlock", "landlock_off", "events_fd"
    IMPORT = "import",
    SEED = "seed", "seed"
    FORGET = "forget",                     # between tests: drop every object the last test made
    # objects of the student's module (``target``: a handle from NEW or a kept CALL, or "module")
    NEW = "new", "cls", "args", "kwargs"
    CALL = "call", "target", "method", "args", "kwargs", "keep"
    GETATTR = "getattr", "target", "name"
    SETATTR = "setattr", "target", "name", "value"
    # torch modules (``attr``: a module the target holds, else the target itself)
    STATE_DICT = "state_dict", "target", "attr"
    PARAMETERS = "parameters", "target", "attr"
    LAYERS = "layers", "target", "attr"
    PARAM_COUNT = "param_count", "target", "attr"
    SET_MODE = "set_mode", "target", "attr", "training"
    LOAD_WEIGHTS = "load_weights", "target", "attr", "path"
    FREEZE_ALTERNATE = "freeze_alternate", "target", "attr"
    EVAL_LABELS = "eval_labels", "target", "attr", "X"
    PROBE = "probe", "target", "attr"
    PROBE_LOG = "probe_log", "target"
    # watching the student's code
    SPY = "spy", "target", "method"
    SPY_LOG = "spy_log", "target", "method"
    RECORD_FIGURES = "record_figures",
    RECORDED_FIGURES = "recorded_figures",


class ErrorKind(enum.Enum):
    """What a failed request raised, as the worker classifies it (worker.error_kind) and sends in the error
    reply's "kind": the grader decides on the kind, never on the message's text.  The worker runs the
    student's code, which can forge any reply: the grader reads a kind only through ``of``."""

    MEMORY = "memory"                  # MemoryError (numpy's too), torch's OutOfMemoryError, an allocator's
                                       # "can't allocate memory" or "out of memory" (torch's CPU allocator)
    FILE_TOO_LARGE = "file_too_large"  # OSError EFBIG: a file over limits.file_size_mb (SIGXFSZ ignored)
    EXIT = "exit"                      # SystemExit, KeyboardInterrupt, GeneratorExit: the code tried to stop
    PERMISSION = "permission"          # PermissionError
    RECURSION = "recursion"            # RecursionError
    UNPICKLING = "unpickling"          # pickle's UnpicklingError (torch.load(weights_only=True) refusing a file)
    PROTOCOL = "protocol"              # the worker's own refusal: a request it does not know, a reply it cannot send
    OTHER = "other"                    # anything else

    @classmethod
    def of(cls, value):
        """The kind ``value`` names; OTHER for anything that is not exactly a declared kind's name."""
        if type(value) is str:
            try:
                return cls(value)
            except ValueError:
                pass
        return cls.OTHER


# The rest of the vocabulary.  Every frame's header carries the request's "id"
# (client.Worker checks that the answer it reads is the answer to what it asked).
# Inside requests (grader -> worker; the worker builds the objects):
REF = "__ref__"          # {REF: handle}: an object the worker keeps from an earlier request
DATA = "__data__"        # {DATA: {array, dtype, scale, shape, torch}}: images sent compactly (uint8)
ONEHOT = "__onehot__"    # {ONEHOT: {labels, classes, dtype, torch}}: one-hot rows built by the worker
TENSOR = "__tensor__"    # {TENSOR: array}: a torch tensor with this content
# Replies (worker -> grader; untrusted, checked by grader/checks.py):
TORCH = "__torch__"      # {TORCH: array, "dtype": torch dtype name}: a tensor's values
OBJECT = "__object__"    # {OBJECT: type name}: something that is not plain data
FIGURE = "__figure__"    # {FIGURE: [axes]}: a matplotlib figure described (titles, labels, lines)
AXES = "__axes__"        # {AXES: axes}: one matplotlib Axes described
REPLY_MARKERS = MappingProxyType({TORCH: "a tensor", OBJECT: "an object", FIGURE: "a figure",
                                  AXES: "an Axes"})


def marker_of(value):
    """The reply marker ``value`` carries, or None."""
    if isinstance(value, dict):
        for key in REPLY_MARKERS:
            if key in value:
                return key
    return None


class ProtocolError(Exception):
    """A malformed or oversized message."""


class ReplyTooLarge(ProtocolError):
    """A reply the worker does not build: the JSON of what it has made plain so far is already over
    MAX_HEADER (worker.Codec counts a lower bound as it goes).  Only a saving of the worker's time: the
    grader's own read (read_message's header_limit) is the bound."""


def _encode(obj, arrays):
    import numpy as np
    if isinstance(obj, np.ndarray):
        if obj.dtype.name not in ALLOWED_DTYPES:
            raise ProtocolError(f"arrays of dtype {obj.dtype} cannot be sent")
        arrays.append(obj if obj.flags.c_contiguous else np.array(obj, order="C"))
        return {"__nd__": len(arrays) - 1}
    if isinstance(obj, dict):
        return {str(k): _encode(v, arrays) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_encode(v, arrays) for v in obj]
    if obj is None or type(obj) in (bool, int, float, str):
        return obj
    raise ProtocolError(f"cannot send an object of type {type(obj).__name__}")


def _parts(obj):
    """The pieces of one message: length, JSON header, then each array's length and raw memory (no copy)."""
    arrays = []
    body = _encode(obj, arrays)
    header = {"body": body, "arrays": [{"dtype": a.dtype.name, "shape": list(a.shape)} for a in arrays]}
    head = json.dumps(header, allow_nan=True).encode("utf-8")
    parts = [struct.pack(">Q", len(head)), head]
    for a in arrays:
        parts.append(struct.pack(">Q", a.nbytes))
        parts.append(memoryview(a.reshape(-1)).cast("B") if a.size else b"")
    return parts


def encode(obj):
    """obj (JSON types and ndarrays) -> bytes of one message."""
    return b"".join(bytes(p) for p in _parts(obj))


def _read_exact(stream, n):
    """Exactly ``n`` bytes, read into one writable buffer (no pieces joined, no copy afterwards)."""
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        count = stream.readinto(view[got:]) if hasattr(stream, "readinto") else None
        if count is None:                        # a stream without readinto
            chunk = stream.read(n - got)
            count = len(chunk)
            view[got:got + count] = chunk
        if not count:
            raise EOFError("the other side closed the connection")
        got += count
    return buf


def _read_length(stream, budget, what="message"):
    """The next 8-byte length; refused before anything of that size is read or allocated."""
    (n,) = struct.unpack(">Q", _read_exact(stream, 8))
    if n > budget:
        raise ProtocolError(f"a {what} of {n:,} bytes is over the limit of {budget:,} bytes")
    return n


def _check_decoded_size(body, sizes, limit):
    """Refuse a body that would decode to more than ``limit`` bytes, or that refers to an array twice.

    Walks the parsed JSON only (no recursion, nothing built): each {"__nd__": i} counts
    ``sizes[i]`` every time it occurs, each list or dict CONTAINER_BYTES + 8 per item."""
    total, seen, repeated, stack = 0, set(), None, [body]
    while stack:
        obj = stack.pop()
        if isinstance(obj, dict) and set(obj) == {"__nd__"}:
            index = obj["__nd__"]
            if type(index) is not int or not 0 <= index < len(sizes):
                raise ProtocolError("bad array reference")
            total += sizes[index]
            if index in seen and repeated is None:
                repeated = index
            seen.add(index)
        elif isinstance(obj, (dict, list)):
            total += CONTAINER_BYTES + 8 * len(obj)
            stack.extend(obj.values() if isinstance(obj, dict) else obj)
        if total > limit:
            raise ProtocolError(f"a message that decodes to more than {limit:,} bytes (each array counted every "
                                f"time it is referred to) is over the limit of {limit:,} bytes")
    if repeated is not None:
        raise ProtocolError(f"array {repeated} is referred to more than once (each array must be sent once)")


def _decode(obj, arrays):
    if isinstance(obj, dict):
        if set(obj) == {"__nd__"}:
            index = obj["__nd__"]
            if type(index) is not int or not 0 <= index < len(arrays):
                raise ProtocolError("bad array reference")
            return arrays[index]
        return {k: _decode(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode(v, arrays) for v in obj]
    return obj


def read_message(stream, limit=MAX_MESSAGE, header_limit=None):
    """Read one message from a binary stream; returns its plain-data body.

    ``limit`` bounds the whole message (JSON and arrays), ``header_limit`` its JSON
    part: decoded JSON costs many times its size in Python objects, raw arrays do not.
    Each length is checked before the bytes are read; what the body decodes to (arrays
    counted at every reference) is checked against ``limit`` before any array byte is."""
    import numpy as np
    budget = limit
    head = _read_exact(stream, _read_length(stream, min(budget, header_limit or budget), "JSON header"))
    try:
        header = json.loads(head.decode("utf-8"))
        specs = header["arrays"]
        body = header["body"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ProtocolError(f"malformed header: {exc}") from None
    except RecursionError:
        raise ProtocolError("a header nested too deeply") from None
    budget -= len(head)
    if not isinstance(specs, list) or len(specs) > MAX_ARRAYS:
        raise ProtocolError(f"a message with more than {MAX_ARRAYS} arrays (or a malformed list of them)")
    shapes = []
    for spec in specs:                       # every shape checked before any array byte is read
        try:
            dtype, shape = spec["dtype"], tuple(int(s) for s in spec["shape"])
        except (KeyError, TypeError, ValueError):
            raise ProtocolError("malformed array spec") from None
        if dtype not in ALLOWED_DTYPES or any(s < 0 for s in shape) or len(shape) > MAX_NDIM:
            raise ProtocolError(f"array of dtype {dtype!r} and shape {shape[:MAX_NDIM + 1]} refused")
        nbytes = int(np.prod(shape, dtype=np.float64)) * np.dtype(dtype).itemsize
        if nbytes > budget:
            raise ProtocolError(f"an array of {nbytes:,} bytes is over the limit of {budget:,} bytes")
        budget -= nbytes
        shapes.append((dtype, shape, nbytes))
    _check_decoded_size(body, [nbytes for _, _, nbytes in shapes], limit)   # before any array byte is read
    arrays = []
    for dtype, shape, expected in shapes:
        n = _read_length(stream, expected, "message")
        if n != expected:
            raise ProtocolError(f"array bytes {n} do not match dtype {dtype} and shape {shape}")
        arrays.append(np.frombuffer(_read_exact(stream, n), dtype=dtype).reshape(shape))   # owns its buffer
    try:
        return _decode(body, arrays)
    except RecursionError:
        raise ProtocolError("a reply nested too deeply") from None


def write_message(stream, obj):
    """Write one message piece by piece: a large array is sent from its own memory, never copied."""
    for part in _parts(obj):
        stream.write(part)
    stream.flush()
