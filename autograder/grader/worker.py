"""The worker: runs one student file and answers the grader's requests.

Started as ``python -I worker.py <scratch dir> <module>``.  The protocol uses
private copies of stdin/stdout; the student's prints go to stderr, which the
grader caps.  Everything sent back is plain data (see protocol.py).  This
process is untrusted: the grader checks every answer itself.
"""
import atexit
import errno
import os
import signal
import sys
import threading
import traceback
from types import MappingProxyType

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import protocol  # noqa: E402  (the vocabulary; it imports numpy only when a message carries arrays)
import sandbox  # noqa: E402

# numpy is imported only once the worker has confined itself: OpenBLAS starts its threads
# at import, and a thread that exists before seccomp and Landlock are applied is not bound by them.
np = None


def load_libraries():
    global np
    import numpy
    np = numpy


def read_setup(stream):
    """The first request, read before numpy exists: one frame of protocol.py's format (an
    8-byte big-endian length, then a JSON header) that carries no arrays."""
    import json
    import struct
    head = stream.read(8)
    if len(head) < 8:
        raise EOFError("the grader closed the connection")
    (n,) = struct.unpack(">Q", head)
    if n > 1 << 20:
        raise ValueError("setup request too large")
    header = json.loads(stream.read(n).decode("utf-8"))
    if header.get("arrays"):
        raise ValueError("the setup request carries no arrays")
    return header["body"]

def fingerprint(value):
    """A cheap digest of an array or tensor argument (None for anything else), to tell
    whether a call changed it in place."""
    import hashlib
    try:
        if type(value).__module__.startswith("torch") and hasattr(value, "detach"):
            value = value.detach().cpu().numpy()
        elif not isinstance(value, np.ndarray):
            return None
        if value.dtype == object:
            return None
        data = np.ascontiguousarray(value)
        return data.shape, str(data.dtype), hashlib.blake2b(data.view(np.uint8), digest_size=16).digest()
    except Exception:  # noqa: BLE001 - a tensor numpy cannot hold (sparse, meta, bfloat16): not checked
        return None


def error_kind(exc, message):
    """The protocol.ErrorKind of an exception that ``message`` (its text) describes: classified here, in the
    worker, so that the grader never reads the text.  Any failure to classify is OTHER."""
    kind = protocol.ErrorKind
    try:
        names = {c.__name__ for c in type(exc).__mro__}
        if names & {"MemoryError", "OutOfMemoryError"} or "can't allocate memory" in message \
                or "out of memory" in message:
            return kind.MEMORY
        if isinstance(exc, OSError) and exc.errno == errno.EFBIG:
            return kind.FILE_TOO_LARGE
        for name, which in (("SystemExit", kind.EXIT), ("KeyboardInterrupt", kind.EXIT),
                            ("GeneratorExit", kind.EXIT), ("PermissionError", kind.PERMISSION),
                            ("RecursionError", kind.RECURSION), ("UnpicklingError", kind.UNPICKLING)):
            if name in names:
                return which
    except BaseException:  # noqa: BLE001 - a hostile exception class (its errno, its metaclass) is just other
        pass
    return kind.OTHER


def protocol_error(message):
    """The error of a reply the worker refuses or cannot send (not the student's exception)."""
    return {"type": "ProtocolError", "message": message, "kind": protocol.ErrorKind.PROTOCOL.value}


LAYER_ATTRS = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "in_features",
               "out_features", "p", "num_features", "eps", "momentum", "affine", "track_running_stats", "bias")


def argument_names(fn, args, kwargs):
    """(parameter name, value) for each argument of the call, by the function's signature."""
    import inspect
    try:
        bound = inspect.signature(fn).bind(*args, **kwargs).arguments
        return [(str(k), v) for k, v in bound.items()]
    except (TypeError, ValueError):
        return [(f"argument {i + 1}", v) for i, v in enumerate(args)] + [(str(k), v) for k, v in kwargs.items()]


class Codec:
    """Values across the protocol: a request's arguments made into objects (handles, compact arrays,
    one-hot rows, tensors), the student's values made into plain data."""

    def __init__(self, objects, report):
        self.objects = objects        # Worker.objects itself: what a REF names
        self.report = report          # Confinement.report: a suspicious value is said in the report
        self.floor = 0                # bytes the JSON of the value being made plain takes at least

    def spend(self, size):
        """Count ``size`` more bytes of the reply's JSON header (a lower bound: json.dumps with its default
        separators writes at least this much); past protocol.MAX_HEADER, which the grader never reads, the
        reply is given up at once (a student's 3 million floats in a list cost seconds to encode)."""
        self.floor += size
        if self.floor > protocol.MAX_HEADER:
            raise protocol.ReplyTooLarge(f"the plain data it returned (lists, dicts, strings and numbers; arrays "
                                         f"travel apart) is over the limit of {protocol.MAX_HEADER:,} bytes")

    def decode_arg(self, value):
        if isinstance(value, dict):
            if protocol.REF in value:
                return self.objects[value[protocol.REF]]
            if protocol.DATA in value:
                spec = value[protocol.DATA]
                # one copy, in the target dtype; the raw bytes are let go at once
                arr = spec.pop("array").astype(spec.get("dtype", "float64"))
                if spec.get("scale", 1.0) != 1.0:
                    arr *= spec["scale"]                                      # in place: no temporary
                return self._maybe_torch(arr.reshape(spec.get("shape", arr.shape)), spec)
            if protocol.ONEHOT in value:
                spec = value[protocol.ONEHOT]
                labels = spec["labels"].astype(np.int64)
                arr = np.zeros((labels.shape[0], spec["classes"]), dtype=spec.get("dtype", "float64"))
                arr[np.arange(labels.shape[0]), labels] = 1
                return self._maybe_torch(arr, spec)
            if protocol.TENSOR in value:
                import torch
                return torch.from_numpy(np.array(value[protocol.TENSOR]))
            return {k: self.decode_arg(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.decode_arg(v) for v in value]
        return value

    @staticmethod
    def _maybe_torch(arr, spec):
        if spec.get("torch"):
            import torch
            return torch.from_numpy(np.ascontiguousarray(arr))
        return arr

    def to_plain(self, value, depth=0):
        """``value`` as plain data for a reply; protocol.ReplyTooLarge once its JSON is sure to be over the
        grader's limit.  What each kind costs at least in JSON: 1 byte a number, 4 a bool or null, quotes and each character a string, 2 for brackets and 2 for each ", " or ": "; an array
        travels apart (its {"__nd__": i} in the header is counted as 11)."""
        if depth == 0:
            self.floor = 0
        if depth > 20:
            return {protocol.OBJECT: "nesting too deep"}
        if value is None or type(value) is bool:
            self.spend(4)
            return value
        if isinstance(value, str):
            value = str(value)
            self.spend(len(value) + 2)
            return value
        kind = type(value)
        if kind.__module__ not in ("builtins", "numpy", "torch", "torch.nn.parameter") and (
                isinstance(value, (int, float, str, bytes, list, tuple, dict, np.ndarray))
                or hasattr(value, "__torch_function__") or kind.__eq__ is not object.__eq__):
            self.report(f"returned an object of type {kind.__module__}.{kind.__name__}, "
                        "a subclass of a plain type or one with its own __eq__")
        if isinstance(value, (int, float, np.generic)):
            self.spend(1)
            try:
                number = value.item() if isinstance(value, np.generic) else value
                return bool(number) if isinstance(number, bool) else (
                    int(number) if isinstance(number, int) else float(number))
            except (TypeError, ValueError):
                return {protocol.OBJECT: type(value).__name__}
        if isinstance(value, np.ndarray):
            if value.dtype == object:
                items = value.tolist()
                self.spend(2 * max(len(items), 1))      # the outer list's; a nested row counts as a list
                return [self.to_plain(v, depth + 1) for v in items]
            if value.dtype.name not in protocol.ALLOWED_DTYPES:
                return {protocol.OBJECT: f"ndarray of dtype {value.dtype}"}
            self.spend(11)
            return np.array(value, copy=True)
        if type(value).__module__.startswith("torch") and hasattr(value, "detach"):
            self.spend(11)
            return {protocol.TORCH: value.detach().cpu().numpy().copy(), "dtype": str(value.dtype)}
        if isinstance(value, (list, tuple)):
            self.spend(2 * max(len(value), 1))
            return [self.to_plain(v, depth + 1) for v in value]
        if isinstance(value, dict):
            self.spend(2 * max(len(value), 1))
            return {self._key(k): self.to_plain(v, depth + 1) for k, v in value.items()}
        kind = type(value).__name__
        if kind == "Figure" and hasattr(value, "axes"):
            return {protocol.FIGURE: [self.describe_axes(ax) for ax in value.axes]}
        if hasattr(value, "get_lines") and hasattr(value, "get_title"):
            return {protocol.AXES: self.describe_axes(value)}
        return {protocol.OBJECT: kind}

    def _key(self, key):
        key = str(key)
        self.spend(len(key) + 4)             # its quotes and ": "
        return key

    @staticmethod
    def describe_axes(ax):
        legend = ax.get_legend()
        return {
            "title": str(ax.get_title()), "xlabel": str(ax.get_xlabel()), "ylabel": str(ax.get_ylabel()),
            "lines": [{"label": str(line.get_label()),
                       "x": np.asarray(line.get_xdata(), dtype=np.float64),
                       "y": np.asarray(line.get_ydata(), dtype=np.float64)} for line in ax.get_lines()],
            "legend": None if legend is None else [str(t.get_text()) for t in legend.get_texts()],
        }


class Confinement:
    """The setup request (sandbox.py, landlock.py) and the audit hook's reports of what the student's code
    did to the process (replaced functions, threads left running, atexit handlers)."""

    def __init__(self, scratch, module_name):
        self.scratch = scratch
        self.module_name = module_name
        self.guard = None            # sandbox.Guard, from the setup on
        self.sentinels = {}
        self.baseline = None

    def report(self, text):
        if self.guard is not None:
            self.guard.report(text)

    def op_setup(self, request):
        """Confine this process (sandbox.py, landlock.py); the first request, before any student code.

        The kernel-enforced layers (rlimits, seccomp, Landlock) go on while this is the
        process's only thread: seccomp and Landlock bind the calling thread and what it
        starts later, so torch's thread pools must not exist yet.  Returns the layers
        that are active, for results.json."""
        threads_alive = len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else None
        try:                        # the kernel's OOM killer takes this process first, never the grader
            with open("/proc/self/oom_score_adj", "w") as fh:
                fh.write("1000")
        except OSError:
            pass
        rlimits = sandbox.set_limits(request["limits"])
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL)   # Python ignores it; over the file size limit = killed
        seccomp_problem = sandbox.block_network()
        rules = request.get("landlock")
        if rules is None:
            landlock_state = request.get("landlock_off") or "off"
        else:
            import landlock
            try:
                abi = landlock.restrict(rules["read"], rules["write"], rules.get("files", []))
                landlock_state = f"ABI {abi}"
            except landlock.LandlockUnavailable as exc:
                landlock_state = f"off: {exc}"
        load_libraries()
        path = os.path.join(self.scratch, self.module_name + ".py")
        with open(path, "rb") as fh:
            uses_torch = b"torch" in fh.read()
        if uses_torch:              # imported here so that replacing its functions at import is seen
            import torch
            if request.get("threads"):
                torch.set_num_threads(int(request["threads"]))
                try:
                    torch.set_num_interop_threads(int(request["threads"]))
                except RuntimeError:     # only possible before any parallel work
                    pass
        import gc
        gc.freeze()         # the libraries' objects, loaded before any student code: out of every later collection
        self.sentinels = sandbox.snapshot()
        self.baseline = threading.active_count()
        self._watch_atexit()
        self.guard = sandbox.install_guard(request["events_fd"], self.scratch, request.get("protected", []),
                                           request.get("writable", []))
        return {"seccomp": seccomp_problem, "landlock": landlock_state, "rlimits": rlimits,
                "threads_alive": threads_alive}

    def _watch_atexit(self):
        """Report atexit handlers registered by the student's own code (libraries register some too)."""
        register, folder, confinement = atexit.register, os.path.realpath(self.scratch) + os.sep, self

        def watched_register(func, *args, **kwargs):
            caller = sys._getframe(1).f_code.co_filename
            if os.path.realpath(caller).startswith(folder):
                confinement.report(f"registered an atexit handler ({os.path.basename(caller)})")
            return register(func, *args, **kwargs)

        atexit.register = watched_register

    def check_sentinels(self):
        found = [f"replaced {name}" for name in sandbox.replaced(self.sentinels, self.scratch)]
        if self.baseline and threading.active_count() > self.baseline:
            found.append("left a Python thread running after a request")
        for text in found:
            self.report(text)            # the guard sends each text once


class Calls:
    """The student's module and the objects it makes: construct, call, read and set attributes."""

    def __init__(self, worker):
        self.worker = worker
        self.changed = []         # array arguments the last call changed in place (names)

    def op_new(self, request):
        worker, decode = self.worker, self.worker.codec.decode_arg
        cls = getattr(worker.module, request["cls"])
        obj = cls(*decode(request.get("args", [])), **decode(request.get("kwargs", {})))
        return {"handle": worker.store(obj)}

    def op_call(self, request):
        worker, decode = self.worker, self.worker.codec.decode_arg
        fn = getattr(worker.target(request), request["method"])
        args, kwargs = decode(request.get("args", [])), decode(request.get("kwargs", {}))
        named = argument_names(fn, args, kwargs)
        before = {name: fingerprint(value) for name, value in named}
        result = fn(*args, **kwargs)
        # the stubs promise to leave their array arguments alone: say which ones changed
        self.changed = [name for name, value in named if before[name] is not None and fingerprint(value) != before[name]]
        if request.get("keep"):
            return {"handle": worker.store(result)}
        return worker.codec.to_plain(result)

    def op_getattr(self, request):
        return self.worker.codec.to_plain(getattr(self.worker.target(request), request["name"]))

    def op_setattr(self, request):
        setattr(self.worker.target(request), request["name"], self.worker.codec.decode_arg(request["value"]))
        return None


class ModelOps:
    """What the grader reads of a torch module, and the mode and weights it sets (``attr``: a module the
    target holds, else the target itself)."""

    def __init__(self, worker):
        self.worker = worker

    def op_state_dict(self, request):
        return {k: v.detach().cpu().numpy().copy() for k, v in self.worker.module_of(request).state_dict().items()}

    def op_parameters(self, request):
        """The trainable parameters (requires_grad) by name: what training must change, unlike the
        state_dict, which also holds buffers such as BatchNorm's running statistics."""
        return {k: v.detach().cpu().numpy().copy() for k, v in self.worker.module_of(request).named_parameters()
                if v.requires_grad}

    def op_layers(self, request):
        """The module's direct submodules in the order forward() runs them, a reused one at every place it
        holds (``children()`` names a shared stateless ``nn.ReLU`` only once)."""
        layers = []
        for child in (c for c in self.worker.module_of(request)._modules.values() if c is not None):
            entry = {"type": type(child).__name__}
            for name in LAYER_ATTRS:
                if hasattr(child, name):
                    value = getattr(child, name)
                    if name == "bias":
                        value = value is not None
                    entry[name] = list(value) if isinstance(value, tuple) else value
            layers.append(self.worker.codec.to_plain(entry))
        return layers

    def op_param_count(self, request):
        return int(sum(p.numel() for p in self.worker.module_of(request).parameters() if p.requires_grad))

    def op_set_mode(self, request):
        import torch
        torch.nn.Module.train(self.worker.module_of(request), bool(request["training"]))
        return None

    def op_load_weights(self, request):
        import torch
        state = torch.load(os.path.join(self.worker.scratch, request["path"]), map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise ValueError(f"{request['path']} must hold a state_dict (a dict of tensors), "
                             f"not a {type(state).__name__}; save it with torch.save(model.state_dict(), ...)")
        self.worker.module_of(request).load_state_dict(state)
        return None


class Instruments:
    """The grader watching the student's code: forward hooks (probe), its own prediction (eval_labels), frozen
    parameters, spied methods and saved figures, each recorded until the grader reads it."""

    def __init__(self, worker):
        self.worker = worker
        self.probes = {}             # target -> what its forward hooks saw (op_probe)
        self.spies = {}              # "target.method" -> the argument shapes of each call (op_spy)
        self.saved_figures = []      # what Figure.savefig saved (op_record_figures)
        self.figure_patch = None     # (Figure, its own savefig) while recording

    def op_probe(self, request):
        """Record, for every forward() of the module and its submodules, whether it ran in
        training mode and with gradients enabled, and which forwards gradients later flowed back
        through (an optimiser step's) in evaluation mode, until probe_log."""
        import torch
        module = self.worker.module_of(request)
        seen = self.probes[request.get("target")] = {"calls": 0, "training": {}, "grad": {}, "hooks": [],
                                                     "backward": 0, "backward_eval": {}}

        def record(name):
            def hook(mod, inputs):
                seen["calls"] += 1
                if mod.training:
                    seen["training"].setdefault(name, type(mod).__name__)
                if torch.is_grad_enabled():
                    seen["grad"].setdefault(name, type(mod).__name__)
            return hook

        def on_output(name):
            def hook(mod, inputs, output):
                if isinstance(output, torch.Tensor) and output.requires_grad:
                    training = mod.training              # the mode this forward ran in

                    def backward(grad):
                        seen["backward"] += 1
                        if not training:
                            seen["backward_eval"].setdefault(name, type(mod).__name__)
                    output.register_hook(backward)
            return hook
        for name, sub in module.named_modules():
            seen["hooks"].append(sub.register_forward_pre_hook(record(name or "(the model)")))
            seen["hooks"].append(sub.register_forward_hook(on_output(name or "(the model)")))
        return None

    def op_probe_log(self, request):
        seen = self.probes.pop(request.get("target"), None)
        if seen is None:
            return None
        for hook in seen["hooks"]:
            hook.remove()
        return {"calls": seen["calls"], "backward": seen["backward"],
                **{key: [f"{name} ({kind})" for name, kind in list(seen[key].items())[:8]]
                   for key in ("training", "grad", "backward_eval")}}

    def op_eval_labels(self, request):
        """The grader's own prediction: argmax of the module's output in evaluation mode, without
        gradients; the module's mode is put back afterwards."""
        import torch
        module = self.worker.module_of(request)
        modes = [(m, m.training) for m in module.modules()]
        try:
            torch.nn.Module.train(module, False)
            with torch.no_grad():
                outputs = module(self.worker.codec.decode_arg(request["X"]))
                return outputs.argmax(dim=1).cpu().numpy().astype(np.int64)
        finally:
            for m, training in modes:
                m.training = training

    def op_freeze_alternate(self, request):
        """requires_grad = False on every other parameter tensor of the module (the first, the
        third...), a grader-side change; returns their names."""
        frozen = []
        for i, (name, param) in enumerate(self.worker.module_of(request).named_parameters()):
            if i % 2 == 0:
                param.requires_grad_(False)
                frozen.append(name)
        return frozen

    def op_spy(self, request):
        obj = self.worker.target(request)
        method = request["method"]
        original = getattr(obj, method)
        log = self.spies.setdefault(f"{request.get('target')}.{method}", [])

        def spy(*args, **kwargs):
            log.append([list(np.shape(a)) if hasattr(a, "shape") else None for a in args])
            return original(*args, **kwargs)

        setattr(obj, method, spy)
        return None

    def op_spy_log(self, request):
        return self.spies.get(f"{request.get('target')}.{request['method']}", [])

    def op_record_figures(self, request):
        """From now until recorded_figures: every figure saved (Figure.savefig, which plt.savefig calls) is
        noted: the file's name, its titles (each axes' and the figure's own) and the first image of each
        axes (what imshow showed)."""
        from matplotlib.figure import Figure
        saved = self.saved_figures = []
        original = Figure.savefig

        def savefig(fig, fname, *args, **kwargs):
            suptitle = fig._suptitle.get_text() if getattr(fig, "_suptitle", None) is not None else ""
            saved.append({"file": os.path.basename(str(fname)),
                          "titles": [str(ax.get_title()) for ax in fig.axes] + [str(suptitle)],
                          "images": [np.asarray(ax.get_images()[0].get_array(), dtype=np.float64)
                                     for ax in fig.axes if ax.get_images()][:4]})
            return original(fig, fname, *args, **kwargs)
        self.figure_patch = (Figure, original)
        Figure.savefig = savefig
        return None

    def op_recorded_figures(self, request):
        patch = self.figure_patch
        if patch is not None:
            patch[0].savefig = patch[1]
            self.figure_patch = None
        return self.worker.codec.to_plain(self.saved_figures[:8])


class Worker:
    """The request loop: each protocol.Op answered by the handler its table names (``handlers``), the student's
    module and the objects the grader keeps of it (``objects``, by handle)."""

    def __init__(self, scratch, module_name):
        self.scratch = scratch
        self.module_name = module_name
        self.module = None
        self.objects = {}
        self.requests = 0        # requests handled: setup is the first, and only the first
        self.confinement = Confinement(scratch, module_name)
        self.codec = Codec(self.objects, self.confinement.report)
        self.calls = Calls(self)
        self.model = ModelOps(self)
        self.instruments = Instruments(self)
        self.handlers = self._handlers()

    def _handlers(self):
        """Each protocol.Op's handler, every op declared there once."""
        op, calls, model, watch = protocol.Op, self.calls, self.model, self.instruments
        return MappingProxyType({
            op.SETUP: self.confinement.op_setup, op.IMPORT: self.op_import, op.SEED: self.op_seed,
            op.FORGET: self.op_forget,
            op.NEW: calls.op_new, op.CALL: calls.op_call, op.GETATTR: calls.op_getattr,
            op.SETATTR: calls.op_setattr,
            op.STATE_DICT: model.op_state_dict, op.PARAMETERS: model.op_parameters, op.LAYERS: model.op_layers,
            op.PARAM_COUNT: model.op_param_count, op.SET_MODE: model.op_set_mode,
            op.LOAD_WEIGHTS: model.op_load_weights,
            op.FREEZE_ALTERNATE: watch.op_freeze_alternate, op.EVAL_LABELS: watch.op_eval_labels,
            op.PROBE: watch.op_probe, op.PROBE_LOG: watch.op_probe_log, op.SPY: watch.op_spy,
            op.SPY_LOG: watch.op_spy_log, op.RECORD_FIGURES: watch.op_record_figures,
            op.RECORDED_FIGURES: watch.op_recorded_figures,
        })

    def target(self, request):
        handle = request.get("target")
        return self.module if handle in (None, "module") else self.objects[handle]

    def module_of(self, request):
        obj = self.target(request)
        return getattr(obj, request["attr"]) if request.get("attr") else obj

    def store(self, obj):
        handle = f"h{len(self.objects)}"
        self.objects[handle] = obj
        return handle

    def op_import(self, request):
        import importlib
        sys.path.insert(0, self.scratch)
        os.chdir(self.scratch)
        self.module = importlib.import_module(self.module_name)
        return None

    def op_seed(self, request):
        import random
        random.seed(request["seed"])
        np.random.seed(request["seed"])
        if "torch" in sys.modules:
            sys.modules["torch"].manual_seed(request["seed"])
        return None

    def op_forget(self, request):
        """Between tests: drop every object the last test made, and give the memory back."""
        import gc
        self.objects.clear()
        self.instruments.spies.clear()
        gc.collect()
        try:
            import ctypes
            ctypes.CDLL(None).malloc_trim(0)   # glibc: return freed heap memory to the system
        except Exception:  # noqa: BLE001 - not glibc (macOS, Windows, musl): nothing to trim
            pass
        return None

    def dispatch(self, request):
        """The handler of the request's op (protocol.Op), or a ProtocolError's text: an op or a field the
        table does not declare, or a second setup."""
        try:
            op = protocol.Op(request.get("op"))
        except (ValueError, TypeError):
            return None, f"unknown op {str(request.get('op'))[:80]}"
        if (op is protocol.Op.SETUP) != (not self.requests):
            return None, ("setup only comes first" if op is protocol.Op.SETUP
                          else f"op {op.value} before setup")
        extra = sorted(str(k)[:40] for k in request if k not in op.fields and k not in ("op", "id"))
        if extra:
            return None, f"op {op.value} takes no field {', '.join(extra)}"
        return self.handlers[op], None

    def handle(self, request):
        op, refusal = self.dispatch(request)
        self.requests += 1
        if op is None:
            return {"ok": False, "id": request.get("id"), "error": protocol_error(refusal)}
        self.calls.changed = []
        if self.confinement.guard is not None:
            self.confinement.guard.kinds.clear()
        try:
            reply = {"ok": True, "value": op(request)}
        except protocol.ReplyTooLarge as exc:      # not the student's exception: the worker's own refusal
            reply = {"ok": False, "error": protocol_error(str(exc))}
        except BaseException as exc:  # noqa: BLE001 - report every student failure as data
            reply = {"ok": False, "error": self.describe_error(exc)}
        if self.calls.changed:
            reply["changed"] = self.calls.changed
        if self.confinement.guard is not None and self.confinement.guard.kinds:
            reply["refused"] = list(self.confinement.guard.kinds)  # what the audit hook refused during this request
        reply["id"] = request.get("id")            # the grader matches every answer to its request
        try:
            self.confinement.check_sentinels()
        except BaseException:  # noqa: BLE001 - a broken event channel must not break the reply
            pass
        return reply

    def describe_error(self, exc):
        frames = [f for f in traceback.extract_tb(exc.__traceback__)
                  if os.path.dirname(os.path.abspath(f.filename)) == os.path.abspath(self.scratch)]
        where = None
        if frames:
            f = frames[-1]
            where = f"{os.path.basename(f.filename)}, line {f.lineno}, in {f.name}: {(f.line or '').strip()}"
        try:
            message = str(exc)[:2000]
        except BaseException:  # noqa: BLE001
            message = "<unprintable>"
        return {"type": type(exc).__name__[:200], "message": message, "where": where and where[:2000],
                "kind": error_kind(exc, message).value}


def main():
    scratch, module_name = sys.argv[1], sys.argv[2]
    proto_in = os.fdopen(os.dup(0), "rb")
    proto_out = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)  # student prints -> stderr
    sys.stdout = sys.stderr
    os.environ.setdefault("MPLBACKEND", "Agg")
    worker = Worker(scratch, module_name)
    try:
        request = read_setup(proto_in)
    except EOFError:
        return
    if request.get("op") != protocol.Op.SETUP.value:
        sys.exit("worker: the first request must be setup")
    answer = worker.handle(request)
    if np is None:                    # the setup failed before the libraries were loaded
        load_libraries()
    protocol.write_message(proto_out, answer)
    while True:
        try:
            request = protocol.read_message(proto_in)
        except EOFError:
            return
        reply = worker.handle(request)
        try:
            protocol.write_message(proto_out, reply)
        except protocol.ProtocolError as exc:
            protocol.write_message(proto_out, {"ok": False, "id": request.get("id"),
                                               "error": protocol_error(str(exc))})


if __name__ == "__main__":
    main()
