"""The grader's side of the worker template (template.py): one per grading, forking each worker.

A worker's start costs a fresh interpreter and ``import torch`` (1.3-1.8 CPU-seconds here, paid
again for every training test's fresh worker).  ``Template`` starts template.py once, with a
worker's environment, and asks it for each worker; what comes back, ``Forked``, stands where a
``subprocess.Popen`` of ``python -I worker.py`` would (pid, the three pipes, poll, wait, kill,
returncode).  Whenever the template cannot serve (it failed to start, has more than one thread,
died, or refuses a request) ``spawn`` returns None with the reason in ``problem``, and the caller
starts that worker the ordinary way: the template only saves time, it never decides anything.
"""
import json
import os
import select
import signal
import socket
import subprocess
import threading

READY_TIMEOUT = 120.0          # seconds for the template to load its libraries (a busy host)
ANSWER_TIMEOUT = 30.0          # seconds for the pid of a forked worker
EVENTS_FD = 3                  # the events channel's descriptor in a forked worker (template.child)


class Forked:
    """A worker forked by the template: what client.Worker uses of a Popen object."""

    def __init__(self, pid, stdin, stdout, stderr, args):
        self.pid, self.args = pid, args
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr
        self.returncode = None
        self.orphaned = False
        self.ended = threading.Event()
        try:
            self.pidfd = os.pidfd_open(pid)
        except OSError:               # it has ended (and been reaped) already: its exit is on its way
            self.pidfd = None

    def exited(self, code):
        if self.returncode is None:
            self.returncode = code
        self.ended.set()
        self.close()

    def orphan(self):
        """The template ended: its exit status cannot come, so the pidfd alone tells when it ends."""
        self.orphaned = True
        self.ended.set()

    def _pidfd_done(self, timeout):
        if self.pidfd is None:
            return True
        ready, _, _ = select.select([self.pidfd], [], [], timeout)
        return bool(ready)

    def poll(self):
        if self.returncode is None and self.orphaned and self._pidfd_done(0):
            self.exited(-signal.SIGKILL)
        return self.returncode

    def wait(self, timeout=None):
        if not self.ended.wait(timeout):
            raise subprocess.TimeoutExpired(self.args, timeout)
        if self.returncode is None and not self._pidfd_done(timeout):     # orphaned meanwhile
            raise subprocess.TimeoutExpired(self.args, timeout)
        return self.poll() if self.returncode is None else self.returncode

    def kill(self):
        self.send_signal(signal.SIGKILL)

    def send_signal(self, sig):
        if self.returncode is None and self.pidfd is not None:
            try:
                signal.pidfd_send_signal(self.pidfd, sig)
            except OSError:
                pass

    def close(self):
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None


class Template:
    """template.py, started at the first worker it is asked for; ``problem`` says why it does not serve."""

    def __init__(self, python, runtime, env, preload=()):
        self.python, self.runtime, self.env = python, runtime, dict(env)
        self.preload = tuple(preload)          # modules template.py loads besides numpy and torch (PRELOADABLE)
        self.proc = self.ctl = None
        self.problem = None
        self.reported = False                  # the problem is in the instructor report
        self.children = {}                     # pid -> Forked
        self.answers = []                      # the answer to the request in flight
        self.cond = threading.Condition()
        self.forks = 0

    def _start(self):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.proc = subprocess.Popen([self.python, "-I", os.path.join(self.runtime, "template.py"),
                                          str(theirs.fileno()), *self.preload], pass_fds=(theirs.fileno(),),
                                         env=self.env,
                                         cwd=self.runtime, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, start_new_session=True)
        except OSError as exc:
            ours.close()
            self.problem = f"could not start: {exc}"
            return
        finally:
            theirs.close()
        self.ctl = ours
        ready, _, _ = select.select([ours], [], [], READY_TIMEOUT)
        first = self._receive() if ready else None
        if not first or not first.get("ready"):
            self.problem = (first or {}).get("why") or "no answer from the template"
            self.close()
            return
        threading.Thread(target=self._read, daemon=True).start()

    def _receive(self):
        try:
            raw = self.ctl.recv(1 << 16)
            return json.loads(raw) if raw else None
        except (OSError, ValueError):
            return None

    def _read(self):
        """The template's messages: a pid (the answer in flight) or a child's exit."""
        while True:
            message = self._receive()
            with self.cond:
                if not isinstance(message, dict):
                    self.problem = self.problem or "the template ended"
                    for forked in self.children.values():
                        forked.orphan()
                    self.children.clear()
                    self.cond.notify_all()
                    return
                if "exit" in message:
                    forked = self.children.pop(message.get("exit"), None)
                    if forked is not None:
                        forked.exited(int(message.get("code", -signal.SIGKILL)))
                else:
                    self.answers.append(message)
                    self.cond.notify_all()

    def spawn(self, scratch, module, user, cwd, env):
        """A Forked worker for ``module`` in ``scratch``, or None (see ``problem``)."""
        if self.problem is None and self.proc is None:
            self._start()
        if self.problem is not None:
            return None
        pipes = [os.pipe() for _ in range(3)]
        events_read, events_write = os.pipe()
        theirs = [pipes[0][0], pipes[1][1], pipes[2][1], events_write]
        request = {"scratch": scratch, "module": module, "cwd": cwd, "env": env,
                   "uid": user[0] if user else None, "gid": user[1] if user else None}
        answer = None
        try:
            with self.cond:
                self.answers.clear()
                socket.send_fds(self.ctl, [json.dumps(request).encode("utf-8")], theirs)
                if self.cond.wait_for(lambda: self.answers or self.problem, ANSWER_TIMEOUT):
                    answer = self.answers.pop(0) if self.answers else None
                pid = answer.get("pid") if isinstance(answer, dict) else None
                if not isinstance(pid, int):
                    self.problem = self.problem or (answer or {}).get("error") or "no pid from the template"
                    self.close()
                    raise OSError(self.problem)
                forked = Forked(pid, os.fdopen(pipes[0][1], "wb"), os.fdopen(pipes[1][0], "rb"),
                                os.fdopen(pipes[2][0], "rb"), ["template.py", module])
                self.children[pid] = forked
                self.forks += 1
        except OSError as exc:
            self.problem = self.problem or f"{exc}"
            for fd in (pipes[0][1], pipes[1][0], pipes[2][0], events_read):
                os.close(fd)
            return None
        finally:
            for fd in theirs:
                os.close(fd)
        forked.events = events_read
        return forked

    def close(self):
        """EOF on the channel: the template ends by itself (it is killed only if it has not after 5 s)."""
        if self.ctl is not None:
            try:
                # shutdown, not only close: the reader thread is blocked in recv() on this socket, and a
                # close() while it is would neither wake it nor send the template its EOF
                self.ctl.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.ctl.close()
        if self.proc is not None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
