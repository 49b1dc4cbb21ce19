"""The worker template: one process per grading that loads numpy and torch once and forks each worker.

Started by the grader (client.Template) as ``python -I template.py <control fd>`` with a worker's
environment, never the grader's: it is a fresh interpreter, so nothing of the grader's memory or
descriptors is in it, and it runs only this project's code.  It loads the libraries every worker
needs (numpy and torch, and torch._dynamo where the grader asks: PRELOADABLE), then forks one child
per worker start the grader asks for.  The child becomes exactly what
``python -I worker.py <scratch> <module>`` started by the grader would be: a session of its own,
the grader's pipes as fds 0, 1 and 2 and the events channel as fd 3 and nothing else open, the
file's uid and gid (root only) with no supplementary groups, the file's folder and environment;
then worker.main() runs, which confines the process (rlimits, Landlock, seccomp) before any
student code is imported, as it does in a worker started afresh.

Forking is safe only from a process with one thread: the template checks its own thread count
before each fork (the thread variables in its environment keep OpenBLAS, OpenMP and torch at one
thread, and nothing here starts one) and refuses to fork otherwise; the grader then starts that
worker the ordinary way.  The control channel is a SOCK_SEQPACKET socket: each request is one
JSON message with the worker's four descriptors attached; the template answers with the child's
pid, and reports each child's exit status when it reaps it.  EOF on the channel (the grader is
gone) ends the template.
"""
import atexit
import gc
import importlib
import json
import os
import select
import signal
import socket
import sys
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
# what the grader may ask the template to load besides numpy and torch (argv after the control fd):
# torch's compiler, which torch imports the first time any optimiser is made (Optimizer.__init__ is wrapped
# by torch._compile._disable_dynamo), 1-1.7 CPU-seconds that every training test's fresh worker paid again
PRELOADABLE = frozenset({"torch._dynamo"})
MAX_REQUEST = 1 << 20
PR_SET_DUMPABLE = 4


def thread_count():
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 0              # cannot tell: treated as unsafe


def send(ctl, message):
    ctl.send(json.dumps(message).encode("utf-8"))


def child(ctl, request, fds):
    """In the forked child: become the worker and never return."""
    code = 1
    try:
        ctl.close()
        os.setsid()
        high = [os.dup(fd) for fd in fds]              # out of the way of 0..3 before dup2 onto them
        for fd in fds:
            os.close(fd)
        for target, fd in enumerate(high):
            os.dup2(fd, target)                        # inheritable: the worker's own children see 0-2
        os.closerange(len(high), max(os.sysconf("SC_OPEN_MAX"), 1024))
        try:
            with open("/proc/self/oom_score_adj", "w") as fh:    # the kernel's OOM killer takes it first
                fh.write("1000")
        except OSError:
            pass
        if request.get("uid") is not None:
            os.setgroups([])
            os.setgid(int(request["gid"]))
            os.setuid(int(request["uid"]))             # as root: real, effective and saved uid alike
        # a uid change without exec leaves the process undumpable (its /proc files root's, unreadable to
        # itself); exec would make it dumpable again: so does this, as for a worker started afresh
        import ctypes
        ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update({str(k): str(v) for k, v in request["env"].items()})
        sys.argv = [os.path.join(HERE, "worker.py"), request["scratch"], request["module"]]
        del request, fds, high
        import worker
        worker.main()
        code = 0
    except SystemExit as exc:
        if isinstance(exc.code, int) or exc.code is None:
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
    except BaseException:  # noqa: BLE001 - the worker's own failure, reported as a worker would
        traceback.print_exc()
    try:
        atexit._run_exitfuncs()                        # as an interpreter that ends normally would
    except BaseException:  # noqa: BLE001
        pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:  # noqa: BLE001
            pass
    os._exit(code if isinstance(code, int) and 0 <= code < 256 else 1)


def reap(ctl, children):
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            children.clear()
            return
        if pid == 0:
            return
        children.discard(pid)
        send(ctl, {"exit": pid, "code": os.waitstatus_to_exitcode(status)})


def serve(ctl):
    children = set()
    while True:
        ready, _, _ = select.select([ctl], [], [], 0.05 if children else None)
        reap(ctl, children)
        if not ready:
            continue
        message, fds, _, _ = socket.recv_fds(ctl, MAX_REQUEST, 4)
        if not message:
            return                                     # the grader is gone
        try:
            request = json.loads(message)
            if len(fds) != 4:
                raise ValueError(f"{len(fds)} descriptors, not 4")
            threads = thread_count()
            if threads != 1:
                raise RuntimeError(f"the template has {threads} threads; it forks only with one")
            pid = os.fork()
            if pid == 0:
                child(ctl, request, fds)
            children.add(pid)
            send(ctl, {"pid": pid})
        except Exception as exc:  # noqa: BLE001 - said to the grader, which starts this worker the usual way
            send(ctl, {"error": f"{type(exc).__name__}: {exc}"})
        finally:
            for fd in fds:
                os.close(fd)


def main():
    sys.path.insert(0, HERE)
    ctl = socket.socket(fileno=int(sys.argv[1]))
    try:
        import ctypes
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)    # PR_SET_PDEATHSIG: ends with the grader
    except (OSError, AttributeError):
        pass
    try:
        import numpy  # noqa: F401 - loaded once here, shared by every worker
        try:
            import torch  # noqa: F401
        except ImportError:
            pass
        for name in sys.argv[2:]:
            if name in PRELOADABLE:
                try:
                    importlib.import_module(name)
                except ImportError:
                    pass
        import worker  # noqa: F401 - and the worker's own modules (it imports sandbox)
        import protocol  # noqa: F401
        gc.collect()
        gc.freeze()          # the libraries' objects: never traversed by a worker's collections (nor copied)
        threads = thread_count()
        send(ctl, {"ready": threads == 1, "threads": threads,
                   "why": "" if threads == 1 else f"{threads} threads after loading the libraries"})
    except Exception as exc:  # noqa: BLE001
        send(ctl, {"ready": False, "why": f"{type(exc).__name__}: {exc}"})
        return
    if threads == 1:
        serve(ctl)


if __name__ == "__main__":
    main()
