"""The grader's side of a worker: start, talk, time out, kill, restart.

One ``Worker`` runs one student file in its own process (its own process group
on POSIX, as an unprivileged user when the grader is root).  Each request has
a wall-clock limit; on expiry the whole group is killed and the request fails
with a message naming the limit.  The student's output is kept, capped, for
messages.
"""
import collections
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time

from . import protocol

HERE = os.path.dirname(os.path.abspath(__file__))
RUNTIME_FILES = ("worker.py", "protocol.py")
POSIX = os.name == "posix"


class WorkerFailure(Exception):
    """The worker could not answer: it timed out, crashed, or broke the protocol."""

    def __init__(self, message, timed_out=False):
        super().__init__(message)
        self.timed_out = timed_out


class StudentError(Exception):
    """The student's code raised; ``info`` has type, message and where."""

    def __init__(self, info):
        self.info = info
        where = f" ({info['where']})" if info.get("where") else ""
        super().__init__(f"{info.get('type')}: {info.get('message')}{where}")


def prepare_runtime(directory):
    """Copy the worker's two modules into ``directory`` (readable by the worker user)."""
    os.makedirs(directory, exist_ok=True)
    for name in RUNTIME_FILES:
        shutil.copy(os.path.join(HERE, name), os.path.join(directory, name))
        os.chmod(os.path.join(directory, name), 0o644)
    os.chmod(directory, 0o755)
    return directory


class Worker:
    def __init__(self, module, scratch, runtime, python=None, user=None, env=None,
                 output_cap=64 * 1024):
        self.module = module
        self.scratch = scratch
        self.runtime = runtime
        self.python = python or sys.executable
        self.user = user
        self.env = env
        self.output_cap = output_cap
        self.proc = None
        self.replies = None
        self.output = collections.deque()
        self.output_size = 0
        self.output_dropped = 0

    # -- process -------------------------------------------------------------
    def start(self):
        cmd = [self.python, "-I", os.path.join(self.runtime, "worker.py"), self.scratch, self.module]
        kwargs = {}
        if POSIX:
            kwargs["start_new_session"] = True
            if self.user is not None:
                kwargs.update(user=self.user[0], group=self.user[1], extra_groups=[])
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     cwd=self.scratch, env=self.env, **kwargs)
        self.replies = queue.Queue()
        self.output.clear()
        self.output_size = self.output_dropped = 0
        threading.Thread(target=self._read_replies, args=(self.proc, self.replies), daemon=True).start()
        threading.Thread(target=self._read_output, args=(self.proc,), daemon=True).start()

    def _read_replies(self, proc, replies):
        try:
            while True:
                replies.put(("reply", protocol.read_message(proc.stdout)))
        except EOFError:
            replies.put(("eof", None))
        except (protocol.ProtocolError, OSError, ValueError) as exc:
            replies.put(("protocol", str(exc)))

    def _read_output(self, proc):
        while True:
            chunk = proc.stderr.read1(8192) if hasattr(proc.stderr, "read1") else proc.stderr.read(8192)
            if not chunk:
                return
            if self.output_size < self.output_cap:
                keep = chunk[: self.output_cap - self.output_size]
                self.output.append(keep)
                self.output_size += len(keep)
                self.output_dropped += len(chunk) - len(keep)
            else:
                self.output_dropped += len(chunk)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                if POSIX:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                else:
                    self.proc.kill()
            except (ProcessLookupError, PermissionError):
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                stream.close()
            except OSError:
                pass

    def stop(self):
        self.kill()
        self.proc = None

    def last_output(self, lines=8):
        text = b"".join(self.output).decode("utf-8", "replace")
        tail = text.strip().splitlines()[-lines:]
        if self.output_dropped:
            tail.append(f"[... {self.output_dropped} more bytes of output dropped]")
        return "\n".join(tail)

    # -- requests ---------------------------------------------------------------
    def request(self, op, timeout, **fields):
        """Send one request; return its value, or raise StudentError / WorkerFailure."""
        if not self.alive():
            raise WorkerFailure("the worker is not running")
        message = dict(fields, op=op)
        try:
            protocol.write_message(self.proc.stdin, message)
        except (BrokenPipeError, OSError):
            return self._died(timeout)
        try:
            kind, payload = self.replies.get(timeout=timeout)
        except queue.Empty:
            self.kill()
            raise WorkerFailure(f"no answer within the time limit of {timeout:g} s; the process was stopped"
                                + self._stderr_suffix(), timed_out=True) from None
        if kind == "reply":
            if not isinstance(payload, dict) or "ok" not in payload:
                self.kill()
                raise WorkerFailure("the worker sent a malformed reply")
            if payload["ok"]:
                return payload.get("value")
            raise StudentError(payload.get("error") or {})
        if kind == "protocol":
            self.kill()
            raise WorkerFailure(f"the worker broke the protocol ({payload})" + self._stderr_suffix())
        return self._died(timeout)

    def _died(self, timeout):
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.proc.returncode
        time.sleep(0.05)  # let the output reader drain
        if code is not None and code < 0:
            try:
                what = f"was killed by signal {signal.Signals(-code).name}"
            except ValueError:
                what = f"was killed by signal {-code}"
        else:
            what = f"exited with code {code}"
        self.kill()
        raise WorkerFailure(f"the process running your code {what}" + self._stderr_suffix())

    def _stderr_suffix(self):
        tail = self.last_output()
        return f"\nLast lines of its output:\n{tail}" if tail else ""
