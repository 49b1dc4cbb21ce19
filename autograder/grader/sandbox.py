"""Confinement of the worker, applied by the worker itself before any student code runs.

Three layers, set up from the grader's ``setup`` message (see worker.py):

1. Resource limits (setrlimit, hard = soft so they cannot be raised again):
   CPU seconds, private memory (RLIMIT_DATA, not RLIMIT_AS: torch reserves
   gigabytes of address space it never uses), processes (only when the worker
   has a user of its own, because the limit counts every process and thread of
   that user), file size, open files, no core files.
2. A seccomp filter (allowed without CAP_SYS_ADMIN once no_new_privs is set):
   creating a socket of any family but AF_UNIX kills the process with SIGSYS,
   which the grader reports; io_uring (which could open sockets behind
   seccomp's back) and ptrace fail with an error; foreign system-call ABIs
   (32-bit, x32) kill.
3. A Python audit hook (PEP 578): refuses to open or list the grader's
   protected paths, to write outside the worker's own folders, to look up
   host names and make non-local sockets, and to start programs from the
   student's own code, and reports those and other telling actions (fork,
   gc and frame inspection) on the events pipe.  Each refusal carries its
   kind (``KINDS``): the grader names it to the student in its own words
   (session.refusal_message), never with the event's text.  Python code
   cannot remove an audit hook; native code can get around it, which is why
   layers 1 and 2 and the file permissions are the real boundary.  The hook
   is what lets the instructor's report name an attempt.
"""
import ctypes
import os
import platform
import struct
import sys
import threading
from types import MappingProxyType

try:
    import resource
except ImportError:          # Windows: no rlimits (and no setup request is sent there)
    resource = None

EVENT_CAP = 200                  # events sent per worker process
EVENT_CHARS = 300

# -- 1. resource limits --------------------------------------------------------------------------


def set_limits(limits):
    """``limits``: cpu_seconds, memory_mb, processes (or None), file_size_mb, open_files.

    Returns the names of the limits set (for results.json)."""
    if resource is None:
        return []
    wanted = [(resource.RLIMIT_CORE, 0),
              (resource.RLIMIT_CPU, int(limits["cpu_seconds"])),
              (resource.RLIMIT_DATA, int(limits["memory_mb"]) << 20),
              (resource.RLIMIT_FSIZE, int(limits["file_size_mb"]) << 20),
              (resource.RLIMIT_NOFILE, int(limits["open_files"]))]
    if limits.get("processes"):
        wanted.append((resource.RLIMIT_NPROC, int(limits["processes"])))
    for which, value in wanted:
        _soft, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        soft_value = value
        if which == resource.RLIMIT_CPU:   # SIGXCPU at the soft limit, SIGKILL 2 s later
            hard_value = value + 2 if hard == resource.RLIM_INFINITY else min(value + 2, hard)
        else:
            hard_value = value
        resource.setrlimit(which, (soft_value, hard_value))
    names = {resource.RLIMIT_CORE: "core 0", resource.RLIMIT_CPU: "cpu", resource.RLIMIT_DATA: "memory",
             resource.RLIMIT_FSIZE: "file size", resource.RLIMIT_NOFILE: "open files"}
    return [names.get(which, "processes") for which, _ in wanted]


# -- 2. seccomp ----------------------------------------------------------------------------------

AF_UNIX = 1
SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_ALLOW = 0x7FFF0000
EPERM, ENOSYS = 1, 38
# machine -> (audit arch, socket, [system calls that fail with an error], checks x32)
# SysV IPC (shmget 29 / 194, semget 64 / 190, msgget 68 / 186) fails with EPERM: its segments outlive the
# worker and its uid's kill, and no memory limit counts them (numpy and torch do not use it).
ARCHES = MappingProxyType({
    "x86_64": (0xC000003E, 41, MappingProxyType({101: EPERM, 310: EPERM, 311: EPERM, 425: ENOSYS, 426: ENOSYS,
                                                 427: ENOSYS, 29: EPERM, 64: EPERM, 68: EPERM}), True),
    "aarch64": (0xC00000B7, 198, MappingProxyType({117: EPERM, 270: EPERM, 271: EPERM, 425: ENOSYS, 426: ENOSYS,
                                                   427: ENOSYS, 194: EPERM, 190: EPERM, 186: EPERM}), False),
})
LD_W_ABS, JEQ_K, JGE_K, RET_K = 0x20, 0x15, 0x35, 0x06


def _assemble(program):
    """program: list of (op, k, jt, jf) and ("label", name); jumps name labels or are None (next)."""
    labels, index = {}, 0
    for ins in program:
        if ins[0] == "label":
            labels[ins[1]] = index
        else:
            index += 1
    out, index = [], 0
    for ins in program:
        if ins[0] == "label":
            continue
        code, k, jt, jf = ins
        offset = (lambda target: 0 if target is None else labels[target] - index - 1)
        out.append(struct.pack("=HBBI", code, offset(jt), offset(jf), k))
        index += 1
    return b"".join(out)


def seccomp_program(machine=None):
    machine = machine or platform.machine()
    if machine not in ARCHES:
        return None
    arch, nr_socket, errors, x32 = ARCHES[machine]
    program = [(LD_W_ABS, 4, None, None),                    # seccomp_data.arch
               (JEQ_K, arch, None, "kill"),
               (LD_W_ABS, 0, None, None)]                    # seccomp_data.nr
    if x32:
        program.append((JGE_K, 0x40000000, "kill", None))
    program += [(JEQ_K, nr_socket, None, "not_socket"),
                (LD_W_ABS, 16, None, None),                  # args[0] (low half): the address family
                (JEQ_K, AF_UNIX, "allow", "kill"),
                ("label", "not_socket")]
    for nr, errno in sorted(errors.items()):
        program += [(JEQ_K, nr, None, f"next{nr}"), (RET_K, SECCOMP_RET_ERRNO | errno, None, None),
                    ("label", f"next{nr}")]
    program += [("label", "allow"), (RET_K, SECCOMP_RET_ALLOW, None, None),
                ("label", "kill"), (RET_K, SECCOMP_RET_KILL_PROCESS, None, None)]
    return _assemble(program)


def block_network():
    """Install the filter; returns None, or why it could not be installed."""
    code = seccomp_program()
    if code is None:
        return f"no seccomp filter for machine {platform.machine()}"
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError as exc:
        return f"libc not found ({exc})"

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]

    if not hasattr(libc, "prctl"):
        return "no prctl on this system (not Linux)"
    prog = SockFprog(len(code) // 8, code)
    PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return f"prctl(PR_SET_NO_NEW_PRIVS) failed: errno {ctypes.get_errno()}"
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        return f"prctl(PR_SET_SECCOMP) failed: errno {ctypes.get_errno()}"
    return None


# -- 3. audit hook -------------------------------------------------------------------------------

REPORTED = frozenset({
    "os.fork", "os.forkpty", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "subprocess.Popen", "os.kill",
    "os.killpg", "signal.pthread_kill", "gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys._getframe",
    "sys._current_frames", "ctypes.dlopen", "ctypes.call_function", "sys.addaudithook", "sys.setprofile",
    "sys.settrace", "import", "os.setuid"})
REPORTED_IMPORTS = frozenset({
    "ctypes", "_ctypes", "gc", "inspect", "socket", "_socket", "subprocess", "signal", "atexit", "_thread",
    "threading", "multiprocessing", "pty", "resource", "mmap", "_pytest", "pytest", "unittest", "grader",
    "protocol", "worker", "sandbox"})
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
# what a refusal was, as the grader's message to the student names it; "other" is named neutrally
KINDS = ("network", "write", "process", "read", "other")
# host name lookups: glibc's resolver opens its socket in C, which the seccomp filter kills
# with SIGSYS before Python sees a socket; refused here first, the refusal has a name
LOOKUPS = frozenset({"socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr", "socket.getnameinfo"})
PROGRAM_STARTS = frozenset({"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn"})
# stdlib wrappers between the student's call and the audit event of a program start
_WRAPPERS = frozenset(os.path.join(os.path.dirname(os.__file__), name) for name in ("os.py", "subprocess.py"))
ALLOWS = MappingProxyType({"network": "network connections", "write": "writing outside your code's own folder",
                           "process": "starting other programs", "read": "reading this file or folder",
                           "other": "this action"})


def _under(path, roots):
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


class Guard:
    """The audit hook.  ``student_dir``: frames from files there are the student's."""

    def __init__(self, events_fd, student_dir, protected, writable):
        self.events_fd = events_fd
        self.student_dir = os.path.realpath(student_dir)
        self.protected = [os.path.abspath(p) for p in protected if p]
        self.writable = [os.path.realpath(p) for p in writable if p]
        self.own = [p for p in self.writable if not p.startswith("/dev/")]   # the worker's own folders
        self.sent = 0
        self.seen = set()
        self.kinds = []          # kinds refused since the worker's current request began (worker.handle)
        self.local = threading.local()

    def report(self, text):
        text = " ".join(str(text).split())[:EVENT_CHARS]
        if text in self.seen or self.sent >= EVENT_CAP:
            return
        self.seen.add(text)
        self.sent += 1
        try:
            os.write(self.events_fd, (text + "\n").encode("utf-8", "replace"))
        except OSError:
            raise PermissionError("the grader's event channel was closed; this action is refused") from None

    def student_line(self, skip=()):
        """'file.py:line' when the nearest caller outside importlib (and the files of ``skip``) is the
        student's file, else None (so what numpy or torch do inside their own code is not reported)."""
        frame = sys._getframe(3)
        depth = 0
        while frame is not None and depth < 40:
            name = frame.f_code.co_filename
            if name.startswith(self.student_dir + os.sep):
                return f"{os.path.basename(name)}:{frame.f_lineno}"
            if not name.startswith("<frozen importlib") and name not in skip:
                return None
            frame, depth = frame.f_back, depth + 1
        return None

    def __call__(self, event, args):
        if getattr(self.local, "busy", False):
            return
        self.local.busy = True
        try:
            self.check(event, args)
        finally:
            self.local.busy = False

    def deny(self, kind, what):
        """Refuse: the instructor's report gets ``what`` (paths and all) and the kind; the student's code
        gets a PermissionError without the path (its text can reach the student's message)."""
        if kind not in self.kinds:
            self.kinds.append(kind)
        self.report(f"refused: {' '.join(str(what).split())[:EVENT_CHARS - 40]} [{kind}]")
        raise PermissionError(f"the grader does not allow {ALLOWS[kind]}")

    def check(self, event, args):
        if event == "open":
            path, mode, flags = (list(args) + [None, None, None])[:3]
            if not isinstance(path, (str, bytes)):
                return
            given = os.path.abspath(os.fsdecode(path))
            real = os.path.realpath(given)
            writing = (isinstance(flags, int) and flags & WRITE_FLAGS) or \
                (isinstance(mode, str) and any(c in mode for c in "wax+"))
            if _under(real, self.protected) or _under(given, self.protected):
                self.deny("write" if writing else "read", f"{'writing' if writing else 'reading'} {real}")
            if writing and not _under(real, self.writable):
                self.deny("write", f"writing {real} (outside the worker's folders)")
        elif event in ("os.listdir", "os.scandir", "os.chdir", "os.chmod", "os.chown", "os.remove", "os.rename",
                       "os.rmdir", "os.symlink", "os.link", "os.truncate", "os.utime", "os.mkdir"):
            for path in args:
                if isinstance(path, (str, bytes)):
                    given = os.path.abspath(os.fsdecode(path))
                    real = os.path.realpath(given)
                    if _under(real, self.protected) or _under(given, self.protected):
                        self.deny("read" if event in ("os.listdir", "os.scandir", "os.chdir") else "write",
                                  f"{event} {real}")
        elif event == "socket.__new__":
            family = args[1] if len(args) > 1 else None
            if family not in (AF_UNIX, -1, None):
                self.deny("network", f"creating a network socket (family {family})")
        elif event in LOOKUPS:
            self.deny("network", f"{event} {repr(args[:1])[:120]}")
        elif event in PROGRAM_STARTS and (where := self.student_line(_WRAPPERS)):   # not a library's own
            self.deny("process", f"{event} {repr(args[:2])[:120]} ({where})")
        elif event in ("socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg"):
            address = args[1] if len(args) > 1 else None
            if isinstance(address, (str, bytes)):
                text = os.fsdecode(address)
                if text.startswith("\0") or not _under(os.path.realpath(text), self.own):
                    self.deny("other", f"{event} to a socket outside the worker's folders ({text!r})")
            elif address is not None:
                self.deny("network", f"{event} to {address!r}")
        elif event in REPORTED:
            if event == "import":
                if args[0] not in REPORTED_IMPORTS:
                    return
                where = self.student_line()
                if where:
                    self.report(f"imports {args[0]} ({where})")
                return
            where = self.student_line()
            if where:
                detail = ""
                if event in ("os.kill", "os.killpg", "subprocess.Popen", "os.system", "ctypes.dlopen"):
                    detail = " " + repr(args[:2])[:120]
                self.report(f"{event}{detail} ({where})")


def install_guard(events_fd, student_dir, protected, writable):
    guard = Guard(events_fd, student_dir, protected, writable)
    sys.addaudithook(guard)
    return guard


# -- replaced functions ----------------------------------------------------------------------------

def sentinel_names():
    """Functions whose replacement by the submission is reported (module, dotted attribute)."""
    names = [("builtins", n) for n in ("print", "open", "isinstance", "abs", "round", "sum", "len", "float",
                                        "int", "range", "__import__", "getattr", "setattr", "type", "min", "max")]
    names += [("numpy", n) for n in ("allclose", "isclose", "array_equal", "array", "asarray", "argmax",
                                      "mean", "random.seed", "random.default_rng", "testing.assert_allclose",
                                      "testing.assert_array_equal", "ndarray.__eq__")]
    names += [("time", n) for n in ("time", "perf_counter", "monotonic", "sleep")]
    names += [("random", "seed"), ("os", "_exit"), ("sys", "exit")]
    names += [("torch", n) for n in ("manual_seed", "load", "save", "no_grad", "from_numpy", "argmax",
                                      "nn.Module.train", "nn.Module.eval", "nn.Module.state_dict",
                                      "nn.Module.load_state_dict", "nn.Module.parameters", "nn.Module.children",
                                      "nn.Module.__call__", "Tensor.detach", "Tensor.cpu", "Tensor.numpy",
                                      "Tensor.__eq__")]
    return names


def _lookup(module, dotted):
    obj = sys.modules.get(module)
    for part in dotted.split("."):
        if obj is None:
            return None
        obj = getattr(obj, part, None)
    return obj


def snapshot():
    return {(m, n): id(_lookup(m, n)) for m, n in sentinel_names() if m in sys.modules}


def _made_in(obj, folder, depth=0):
    """Whether ``obj`` (a function, a wrapper of one, or an instance) comes from code in ``folder``."""
    if obj is None or depth > 3:
        return False
    code = getattr(obj, "__code__", None)
    if code is not None and str(getattr(code, "co_filename", "")).startswith(folder + os.sep):
        return True
    module = sys.modules.get(getattr(type(obj), "__module__", "") or "")
    if str(getattr(module, "__file__", "") or "").startswith(folder + os.sep):
        return True
    return any(_made_in(getattr(obj, attr, None), folder, depth + 1) for attr in ("__wrapped__", "func",
                                                                                 "__func__"))


def replaced(before, folder):
    """Names whose object changed since ``before`` to one made by code in ``folder`` (torch itself
    wraps some of its functions later, which is not reported)."""
    folder = os.path.realpath(folder)
    out = []
    for (m, n), ident in before.items():
        obj = _lookup(m, n)
        if id(obj) != ident and _made_in(obj, folder):
            out.append(f"{m}.{n}")
    return out
