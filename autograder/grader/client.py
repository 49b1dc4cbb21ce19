"""The grader's side of a worker: start, talk, time out, kill, restart.

One ``Worker`` runs one student file in its own process (its own process group
on POSIX, as an unprivileged user when the grader is root).  Each request has
a wall-clock limit; on expiry the whole group is killed and the request fails
with a message naming the limit.  The student's output is kept, capped, for
messages.
"""
import collections
import os
from types import MappingProxyType
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

from . import protocol, reaper, resources, spawn, submission
from .sandbox import KINDS

HERE = os.path.dirname(os.path.abspath(__file__))
RUNTIME_FILES = ("worker.py", "protocol.py", "sandbox.py", "landlock.py", "template.py")
POSIX = os.name == "posix"


# a SIGSYS without a refusal the audit hook named: neutral (the kernel's rules are not described), but with
# the honest cause it nearly always has
FORBIDDEN = ("this file's tests stopped: the code tried an action the grader does not allow, most likely a network "
             "connection opened by a library (the grader has no network: download nothing, and load data only "
             "inside `main()` or under `if __name__ == \"__main__\":`)")
OVER_LIMIT = "this file's tests stopped: the code went over one of the grader's resource limits"
# a worker's folders over limits.scratch_mb / scratch_files (submission.tree_usage's bound): (what the
# instructor report says, what the student is told it wrote)
FOLDER_LIMITS = MappingProxyType({
    "bytes": ("filled its folders beyond limits.scratch_mb = {mb} MB", "more than {mb} MB to disk"),
    "entries": ("filled its folders beyond limits.scratch_files = {files:,} files and folders",
                "more than {files:,} files and folders"),
    "depth": (f"nested folders more than {submission.HELD_FOLDERS} levels deep",
              f"folders nested more than {submission.HELD_FOLDERS} levels deep"),
})
OVER_FOLDERS = ("this file's tests stopped: your code wrote {what} in its folder (the grader's limit, the uploaded "
                "files included). Write less to disk: save only the files the assignment asks for, and delete or "
                "overwrite temporary files.")
FORGED = ("this file's tests stopped: your code wrote an answer on the grader's channel itself (the grader reads "
          "only what its worker writes)")
# what the worker's own loop puts in an answer beside its value (worker.handle, describe_error): anything
# else, or anything longer, was written by the student's code; each text is checked before it is used
ERROR_TEXTS = MappingProxyType({"type": 200, "message": 4000, "where": 4000, "kind": 40})
NAME_LISTS = MappingProxyType({"changed": 1000, "refused": 100})      # list key -> most entries (each <= 200)


def answer_problem(payload):
    """Why an answer's own fields (error, changed, refused) are not what the worker's loop writes, or None.
    Checked before any of them is formatted or compared: a forged error whose message is 4,000 arrays cost
    the grader 30 CPU-seconds and 65 MB of text per answer."""
    error = payload.get("error")
    if not payload["ok"] or error is not None:
        if not isinstance(error, dict) or not set(error) <= set(ERROR_TEXTS):
            return "its error is not the worker's (type, message, where)"
        for key, most in ERROR_TEXTS.items():
            value = error.get(key)
            if value is not None and not (isinstance(value, str) and len(value) <= most):
                return f"its error's {key} is not a text of at most {most} characters"
    for key, most in NAME_LISTS.items():
        value = payload.get(key)
        if value is not None and not (isinstance(value, list) and len(value) <= most
                                      and all(isinstance(v, str) and len(v) <= 200 for v in value)):
            return f"its {key} is not a list of at most {most} short names"
    return None


UNSOLICITED = ("this file's tests stopped: your code sent data to the grader outside a call (for example from a "
               "thread left running)")


class WorkerFailure(Exception):
    """The worker could not answer: it timed out, crashed, or broke the protocol.

    ``fatal``: a forbidden action or a resource limit; the file's later tests are not run.
    ``refused``: the kinds of action (sandbox.KINDS) the audit hook refused during the request.
    ``output``: the end of the student's output, as a suffix for a message ("" if none)."""

    def __init__(self, message, timed_out=False, fatal=False, refused=(), output=""):
        super().__init__(message)
        self.timed_out = timed_out
        self.fatal = fatal
        self.refused = list(refused)
        self.output = output


processes_of = reaper.processes_of        # kept for the self-tests and tools
kill_user = reaper.kill_user
EVENT_LINE_CHARS = 300                    # one line of the events channel, as the grader keeps it
EVENTS_PER_WORKER = 200                   # lines kept per worker process; the rest are counted
REPLY_QUEUE = 2                           # frames held for the grader: the answer it waits for, then the end
REFUSAL = re.compile(r"refused: .* \[(\w+)\]")      # an audit hook's refusal (sandbox.Guard.deny) and its kind


def refused_kinds(value):
    """The kinds of a reply's ``refused`` field (the worker's word: only known kinds, each once)."""
    if not isinstance(value, list):
        return []
    return [k for k in KINDS if k in value]


def clean_event(raw):
    """A line from the worker's events channel (the student's process: untrusted), made safe to show."""
    text = raw.decode("utf-8", "replace")
    text = "".join(c if c.isprintable() else " " for c in text).strip()
    return text[:EVENT_LINE_CHARS] + (" [cut]" if len(text) > EVENT_LINE_CHARS else "")


class StudentError(Exception):
    """The student's code raised; ``info`` has type, message and where; ``kind``: the protocol.ErrorKind the
    worker classified it as (untrusted: OTHER unless a declared kind's name); ``refused``: the kinds of action
    the audit hook refused during the request (sandbox.KINDS)."""

    def __init__(self, info, refused=()):
        info = info if isinstance(info, dict) else {}
        self.info = info
        self.kind = protocol.ErrorKind.of(info.get("kind"))
        self.refused = list(refused)
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
                 output_cap=64 * 1024, setup=None, output_limit=None, on_event=None, reply_limit=None,
                 cgroup=None, folders=(), template=None):
        """``user``: (uid, gid) of a user of the worker's own (root only), or None.
        ``setup``: the sandbox settings sent before anything else (see worker.Confinement.op_setup).
        ``output_limit``: bytes of output after which the process is killed.
        ``on_event``: called with each line for the instructor's report.
        ``reply_limit``: bytes of one reply frame the grader reads (checked before reading it).
        ``cgroup``: called before each start for a reaper.WorkerCgroup (or None) to hold the worker.
        ``folders``: the folders the worker may write (scratch, home), measured after every request against
        the setup's limits scratch_mb and scratch_files.
        ``template``: a spawn.Template to fork the worker from (None, or where it cannot: a fresh interpreter)."""
        self.module = module
        self.scratch = scratch
        self.runtime = runtime
        self.python = python or sys.executable
        self.user = user
        self.env = env
        self.output_cap = output_cap
        self.setup = dict(setup or {})
        self.output_limit = output_limit
        self.on_event = on_event or (lambda text: None)
        self.reply_limit = reply_limit or protocol.MAX_MESSAGE
        self.ooms_before = None
        self.limit_hit = None            # a resource limit the worker went over: it was killed, the file stops
        self.limit_message = OVER_LIMIT  # what the student is told of it
        self.folders = list(folders)
        self.template = template
        self.held = None                 # {pid: pidfd} of the worker's processes stopped between two requests
        self.others_seen = False         # processes besides the worker were found between requests (reported)
        self.proc = None
        self.replies = None
        self.reply_lock = threading.Lock()
        self.awaiting = False            # a request was sent and its one answer has not come yet
        self.closing = False             # the grader is killing the worker: frames still in the pipe are dropped
        self.unsolicited = False         # a frame came while no request waited: the worker was killed, the file stops
        self.make_cgroup = cgroup
        self.group = None
        self.events_reader = None
        self.refused = []                # kinds of the refusals on the events channel since the last request
        self.confinement = None          # the setup answer: the layers the worker reports active
        self.leftover = []               # pids of the worker's uid that survived the last kill
        self.next_id = 0
        self.changed = []          # array arguments the last call changed in place (worker-reported)
        self.output = collections.deque()
        self.output_size = 0
        self.output_dropped = 0

    # -- process -------------------------------------------------------------
    def start(self, setup_timeout=120.0):
        """Start the worker and confine it (the setup request, within ``setup_timeout`` s); raises WorkerFailure."""
        cmd = [self.python, "-I", os.path.join(self.runtime, "worker.py"), self.scratch, self.module]
        kwargs = {}
        events_read = events_write = None
        if POSIX:
            kwargs["start_new_session"] = True
            if self.user is not None:
                kill_user(*self.user)        # leftovers of an earlier grader in this slot
                kwargs.update(user=self.user[0], group=self.user[1], extra_groups=[])
            events_read, events_write = os.pipe()
            kwargs["pass_fds"] = (events_write,)
        self.limit_hit = None
        self.ooms_before = resources.oom_kills()
        self.group = self.make_cgroup() if (POSIX and self.make_cgroup) else None
        forked = None
        if POSIX and self.template is not None:      # forked from the grading's template (spawn.py), if it can
            forked = self.template.spawn(self.scratch, self.module, self.user, self.scratch, self.env)
            if forked is None and not self.template.reported:
                self.template.reported = True
                self.on_event(f"worker template not used ({self.template.problem}): workers start afresh")
        try:
            if forked is not None:
                self.proc = forked
                os.close(events_read)
                os.close(events_write)
                events_read, events_write = forked.events, None
            else:
                self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                             stderr=subprocess.PIPE, cwd=self.scratch, env=self.env, **kwargs)
        finally:
            if events_write is not None:
                os.close(events_write)
        if POSIX:   # the kernel's OOM killer takes the worker first, even before it says so itself (op_setup)
            try:
                with open(f"/proc/{self.proc.pid}/oom_score_adj", "w") as fh:
                    fh.write("1000")
            except OSError:
                pass
        if self.group is not None and not self.group.add(self.proc.pid):   # before any student code runs
            self.group.destroy()
            self.group = None
        self.replies = queue.Queue(maxsize=REPLY_QUEUE)
        self.awaiting = self.closing = self.unsolicited = False
        self.output.clear()
        self.output_size = self.output_dropped = 0
        threading.Thread(target=self._read_replies, args=(self.proc, self.replies), daemon=True).start()
        threading.Thread(target=self._read_output, args=(self.proc,), daemon=True).start()
        if events_read is not None:
            self.events_reader = threading.Thread(target=self._read_events, args=(events_read,), daemon=True)
            self.events_reader.start()
        if POSIX:
            answer = self.request(protocol.Op.SETUP, setup_timeout,
                                  **dict(self.setup, events_fd=spawn.EVENTS_FD if forked else events_write))
            self.confinement = answer if isinstance(answer, dict) else {}
            if self.confinement.get("seccomp"):
                self.on_event(f"network filter not installed: {self.confinement['seccomp']}")

    def _read_events(self, fd):
        """The events channel: lines capped in length and number here, whatever the worker writes."""
        kept = dropped = 0
        with os.fdopen(fd, "rb") as stream:
            while True:
                raw = stream.readline(EVENT_LINE_CHARS * 4)
                if not raw:
                    break
                if not raw.endswith(b"\n"):         # an over-long line: skip the rest of it
                    while True:
                        more = stream.readline(1 << 16)
                        if not more or more.endswith(b"\n"):
                            break
                if kept < EVENTS_PER_WORKER:
                    kept += 1
                    text = clean_event(raw)
                    refusal = REFUSAL.fullmatch(text)
                    if refusal and refusal.group(1) in KINDS and refusal.group(1) not in self.refused:
                        self.refused.append(refusal.group(1))
                    self.on_event("worker: " + text)
                else:
                    dropped += 1
        if dropped:
            self.on_event(f"{dropped} more lines from the worker's events channel dropped")

    def _read_replies(self, proc, replies):
        """One frame per request sent: the answer goes to ``replies`` (bounded, never waited on); a frame
        or a malformed one while no request waits kills the worker at once and stops the file."""
        end = ("eof", None)                       # also after a refusal: a request waiting wakes up
        try:
            while True:
                message = protocol.read_message(proc.stdout, self.reply_limit, protocol.MAX_HEADER)
                expected = self._expected(replies)
                if expected is None:              # a worker the grader stopped: nothing more to read
                    break
                if not expected:
                    self._refuse_unsolicited("a frame")
                    break
                replies.put_nowait(("reply", message))
        except EOFError:
            pass
        except protocol.ProtocolError as exc:
            if self._expected(replies, taken=False) is False:
                self._refuse_unsolicited(f"a malformed frame ({str(exc)[:200]})")
            else:
                end = ("protocol", str(exc))
        except (OSError, ValueError) as exc:      # the grader closed the pipe while killing the worker
            end = ("protocol", str(exc))
        except queue.Full:                        # cannot happen (one answer per request, then the end)
            with self.reply_lock:
                self.unsolicited = True
            self._refuse_unsolicited("more frames than requests")
        try:
            replies.put_nowait(end)
        except queue.Full:
            pass

    def _expected(self, replies, taken=True):
        """Whether a request waits for this frame (``taken``: it is its answer); if none does, the
        worker is marked ``unsolicited`` in the same step, so that request() sees one or the other.
        None: the grader has stopped this worker (or started another)."""
        with self.reply_lock:
            if replies is not self.replies or self.closing:
                return None
            waiting = self.awaiting
            if taken:
                self.awaiting = False
            if not waiting:
                self.unsolicited = True
            return waiting

    def _refuse_unsolicited(self, what):
        self._kill_group()
        self.on_event(f"unsolicited frame: the worker sent {what} while no request was waiting; it was killed "
                      "and the file's later tests stopped")

    def _read_output(self, proc):
        while True:
            chunk = proc.stderr.read1(8192) if hasattr(proc.stderr, "read1") else proc.stderr.read(8192)
            if not chunk:
                return
            if self.output_limit and self.output_size + self.output_dropped + len(chunk) > self.output_limit \
                    and self.limit_hit is None:
                self.limit_hit = f"wrote more than {self.output_limit} bytes of output"
                self._kill_group()
            if self.output_size < self.output_cap:
                keep = chunk[: self.output_cap - self.output_size]
                self.output.append(keep)
                self.output_size += len(keep)
                self.output_dropped += len(chunk) - len(keep)
            else:
                self.output_dropped += len(chunk)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def _kill_group(self):
        try:
            if POSIX:
                os.killpg(self.proc.pid, signal.SIGKILL)
            else:
                self.proc.kill()
        except (ProcessLookupError, PermissionError):
            pass

    def kill(self):
        """Kill the worker and everything it started: its cgroup, then every task of its uid."""
        if self.proc is None:
            return
        with self.reply_lock:
            self.closing = True
        held, self.held = self.held, None
        reaper.continue_processes(held, resume=False)       # SIGKILL ends a stopped process as it is
        if self.proc.poll() is None:
            self._kill_group()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self._kill_group()                   # children left in the group
        group, self.group = self.group, None
        if group is not None:
            escaped = [p for p in group.pids() if p != self.proc.pid]
            if escaped:
                self.on_event(f"{len(escaped)} process(es) of the worker were still running after it ended "
                              "(daemon, setsid or a thread whose leader exited); all were killed")
            for problem in group.destroy():
                self.on_event(f"cleanup: {problem}")
        if POSIX and self.user is not None:
            if group is None:
                escaped = [p for p in reaper.processes_of(self.user[0]) if p != self.proc.pid]
                if escaped:
                    self.on_event(f"{len(escaped)} process(es) of the worker's uid were still running after it "
                                  "ended (daemon, setsid or a thread whose leader exited); all were killed")
            self.leftover = reaper.kill_user(*self.user)
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
        """Send one request (``op``: a protocol.Op, with only the fields it declares); return its value, or
        raise StudentError / WorkerFailure.  Anything else is the grader's own mistake: ProtocolError,
        nothing sent."""
        if not isinstance(op, protocol.Op):
            raise protocol.ProtocolError(f"{op!r} is not a protocol.Op")
        undeclared = sorted(set(fields) - op.fields)
        if undeclared:
            raise protocol.ProtocolError(f"op {op.value} takes no field {', '.join(undeclared)}")
        with self.reply_lock:                # from here on a frame is this request's answer
            refused, self.awaiting = self.unsolicited, True
        if refused:                          # the reply reader killed the worker: a frame outside a call
            self.kill()
            raise WorkerFailure(UNSOLICITED, fatal=True)
        if self.held is not None:            # stopped since the last answer and counted then: nothing ran since
            reaper.continue_processes(self.held)
            self.held = None
        else:
            self._count_processes()
        if self.limit_hit:
            return self._died(timeout)
        if not self.alive():
            raise WorkerFailure("the worker is not running")
        try:
            stray = self.replies.get_nowait()
        except queue.Empty:
            stray = None
        if stray is not None and stray[0] == "reply":   # a frame that came before this request was sent
            self.kill()
            self.on_event("unsolicited frame on the reply channel: a reply nobody asked for")
            raise WorkerFailure(UNSOLICITED, fatal=True)
        if stray is not None:
            self.replies.put_nowait(stray)   # eof or a protocol error: reported below
        self.next_id += 1
        self.refused = []
        message = dict(fields, op=op.value, id=self.next_id)
        try:
            protocol.write_message(self.proc.stdin, message)
        except (BrokenPipeError, OSError):
            return self._died(timeout)
        except protocol.ProtocolError:       # the grader's own request could not be encoded: nothing was sent
            with self.reply_lock:
                self.awaiting = False
            raise
        kind, payload = self._wait(timeout)
        if kind == "timeout":
            self.kill()
            self.on_event(f"no answer within the time limit of {timeout:g} s ({op.value})")
            output = self._stderr_suffix()
            raise WorkerFailure(f"no answer within the time limit of {timeout:g} s; the process was stopped"
                                + output, timed_out=True, refused=self._refused_by_events(), output=output) from None
        if kind == "reply":
            self._between()
            # the worker's own loop always answers with a dict holding "ok" and the request's id: anything else
            # was written by the student's code on the grader's channel, as between requests (fatal, so that the
            # outcome does not hang on when a thread's frame happens to arrive)
            if not isinstance(payload, dict) or "ok" not in payload or payload.get("id") != self.next_id:
                self.kill()
                self.on_event(f"reply refused: request id {self.next_id}, a frame that is not its answer (id "
                              f"{str(payload.get('id') if isinstance(payload, dict) else None)[:40]})")
                with self.reply_lock:
                    self.unsolicited = True
                raise WorkerFailure(UNSOLICITED, fatal=True)
            forged = answer_problem(payload)
            if forged:
                self.kill()
                self.on_event(f"reply refused: request id {self.next_id}, an answer the worker did not write ({forged})")
                with self.reply_lock:
                    self.unsolicited = True
                raise WorkerFailure(FORGED, fatal=True)
            changed = payload.get("changed")
            self.changed = ([str(name)[:60] for name in changed[:10]] if isinstance(changed, list)
                            else ["(an unreadable list)"] if changed is not None else [])
            if payload["ok"]:
                return payload.get("value")
            raise StudentError(payload.get("error") or {}, refused=refused_kinds(payload.get("refused")))
        if kind == "protocol":
            self.kill()
            self.on_event(f"reply refused: {payload}")
            raise WorkerFailure(f"the grader refused the answer of your code: {payload}. Return only what the "
                                "docstring asks for." + self._stderr_suffix())
        return self._died(timeout)

    def _wait(self, timeout):
        """Next reply, or ("timeout", None); as root, also watches the worker user's process count."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return "timeout", None
            try:
                return self.replies.get(timeout=min(left, 0.5))
            except queue.Empty:
                pass
            self._count_processes()
            self._check_folders()

    def _count_processes(self, count=None):
        """As root: too many processes of the worker's user (threads do not show here; processes do) kill
        them all; the request then fails with OVER_LIMIT.  Checked every half second of a request and between
        requests (``count``: the processes _between stopped), so processes started then are counted too."""
        limit = (self.setup.get("limits") or {}).get("processes")
        if self.user is not None and limit and self.limit_hit is None:
            count = reaper.count_processes(self.user[0]) if count is None else count
            if count >= max(4, limit // 4):
                self._over_limit(f"started {count} processes")

    def _check_folders(self):
        """The worker's folders (scratch and home) within limits.scratch_mb and scratch_files, measured by
        the grader (submission.tree_usage: bounded work, nothing followed or opened but folders).  The kernel
        bounds only each file (RLIMIT_FSIZE); a size-limited tmpfs per worker would need CAP_SYS_ADMIN, which
        Gradescope's container does not give, so this check, in the grader's process, is the bound."""
        limits = self.setup.get("limits") or {}
        files, mb = limits.get("scratch_files"), limits.get("scratch_mb")
        if not self.folders or not files or not mb or self.limit_hit is not None:
            return
        _, _, over = submission.tree_usage(self.folders, files, mb << 20)
        if over:
            report, student = FOLDER_LIMITS[over]
            self._over_limit(report.format(mb=mb, files=files),
                             OVER_FOLDERS.format(what=student.format(mb=mb, files=files)))

    def _over_limit(self, what, message=OVER_LIMIT):
        """Kill everything of the worker at once; its next request fails with ``message``, fatal."""
        self.limit_hit, self.limit_message = what, message
        self._kill_group()
        if self.user is not None:
            kill_user(*self.user)

    def _between(self):
        """After each answer until the next request, nothing of the worker runs: as root, every process of its
        uid is stopped (reaper.stop_user: threads and children alike), so none spins on the CPU while the
        grader works between requests; it is counted, and its folders are measured while nothing writes.
        (Stopping was chosen over charging the CPU time used between requests: a charge would come after the
        grader had lost the time.)  Without a uid of its own (not root) a worker is not stopped: its children
        could not all be found."""
        if POSIX and self.user is not None and self.limit_hit is None:
            self.held = reaper.stop_user(self.user[0])
            if self.held is not None:
                if len(self.held) > 1 and not self.others_seen:
                    self.others_seen = True
                    self.on_event(f"{len(self.held) - 1} process(es) of the worker's uid besides the worker were "
                                  "alive between two requests; they were stopped with it until the next request")
                self._count_processes(len(self.held))
        self._check_folders()

    def _refused_by_events(self):
        """The kinds refused during the request, once the dead worker's events channel is read to its end."""
        if self.events_reader is not None:
            self.events_reader.join(timeout=1.0)
        return list(self.refused)

    def _died(self, timeout):
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.proc.returncode
        time.sleep(0.05)  # let the output reader drain
        if code is not None and code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = str(-code)
            what = f"was killed by signal {name}"
        else:
            name, what = None, f"exited with code {code}"
        self.kill()
        if self.limit_hit:
            self.on_event(f"resource limit: the worker {self.limit_hit}; it was killed")
            raise WorkerFailure(self.limit_message, fatal=True)
        if name == "SIGSYS":
            self.on_event("forbidden system call (a network socket or another blocked call): killed by SIGSYS")
            raise WorkerFailure(FORBIDDEN, fatal=True, refused=self._refused_by_events())
        ooms = resources.oom_kills()
        if name == "SIGKILL" and ooms is not None and self.ooms_before is not None and ooms > self.ooms_before:
            memory = (self.setup.get("limits") or {}).get("memory_mb")
            self.on_event(f"out of memory: the kernel's OOM killer stopped the worker (its limit: {memory} MB)")
            raise WorkerFailure(f"the process running your code ran out of memory and was stopped (the grader "
                                f"gives your code at most {memory} MB); use less memory, for example smaller "
                                "batches or float32 arrays" + self._stderr_suffix())
        if name in ("SIGXCPU", "SIGXFSZ"):
            which = "CPU time" if name == "SIGXCPU" else "file size"
            self.on_event(f"resource limit: {which} ({name})")
            raise WorkerFailure(OVER_LIMIT, fatal=True)
        self.on_event(f"the worker {what}")
        output = self._stderr_suffix()
        raise WorkerFailure(f"the process running your code {what}" + output, refused=self._refused_by_events(),
                            output=output)

    def _stderr_suffix(self):
        tail = self.last_output()
        return f"\nLast lines of its output:\n{tail}" if tail else ""
