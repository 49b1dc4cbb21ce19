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


def timed_out(timeout):
    return f"no answer within the time limit of {timeout:g} s; the process was stopped"


def refused_answer(payload):
    """A reply the protocol refused (malformed, too large, a dtype it does not carry)."""
    return f"the grader refused the answer of your code: {payload}. Return only what the docstring asks for."


def out_of_memory(memory):
    return (f"the process running your code ran out of memory and was stopped (the grader gives your code at "
            f"most {memory} MB); use less memory, for example smaller batches or float32 arrays")


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


class Output:
    """The student's output (the worker's stderr): its first ``cap`` bytes kept for messages, the rest counted;
    past ``limit`` bytes in all (None: no limit), ``over`` is called with what the worker did."""

    def __init__(self, cap, limit, over):
        self.cap = cap
        self.limit = limit
        self.over = over
        self.chunks = collections.deque()
        self.size = 0
        self.dropped = 0

    def reset(self):
        self.chunks.clear()
        self.size = self.dropped = 0

    def read(self, proc):
        """The reader thread of one process, until its stderr ends."""
        while True:
            chunk = proc.stderr.read1(8192) if hasattr(proc.stderr, "read1") else proc.stderr.read(8192)
            if not chunk:
                return
            if self.limit and self.size + self.dropped + len(chunk) > self.limit:
                self.over(f"wrote more than {self.limit} bytes of output")
            if self.size < self.cap:
                keep = chunk[: self.cap - self.size]
                self.chunks.append(keep)
                self.size += len(keep)
                self.dropped += len(chunk) - len(keep)
            else:
                self.dropped += len(chunk)

    def tail(self, lines=8):
        text = b"".join(self.chunks).decode("utf-8", "replace")
        tail = text.strip().splitlines()[-lines:]
        if self.dropped:
            tail.append(f"[... {self.dropped} more bytes of output dropped]")
        return "\n".join(tail)

    def suffix(self):
        """The end of the output as a message's last lines ("" if none)."""
        tail = self.tail()
        return f"\nLast lines of its output:\n{tail}" if tail else ""


class Events:
    """The worker's events channel (the audit hook's lines): each line, made safe, to ``on_event``, and the kinds
    of the refusals among them since ``clear``."""

    def __init__(self, on_event):
        self.on_event = on_event
        self.reader = None
        self.refused = []                # kinds of the refusals on the events channel since the last request

    def start(self, fd):
        self.reader = threading.Thread(target=self._read, args=(fd,), daemon=True)
        self.reader.start()

    def _read(self, fd):
        """Lines capped in length and number here, whatever the worker writes."""
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

    def clear(self):
        self.refused = []

    def kinds(self):
        """The kinds refused during the request, once the dead worker's events channel is read to its end."""
        if self.reader is not None:
            self.reader.join(timeout=1.0)
        return list(self.refused)


class Channel:
    """The reply channel: one frame per request sent, read by a thread of its own into ``replies`` (bounded,
    never waited on); a frame, or a malformed one, while no request waits kills the worker at once
    (``kill_group``) and marks it ``unsolicited``: the file stops."""

    def __init__(self, reply_limit, on_event, kill_group):
        self.reply_limit = reply_limit   # bytes of one reply frame the grader reads (checked before reading it)
        self.on_event = on_event
        self.kill_group = kill_group
        self.replies = None
        self.lock = threading.Lock()
        self.awaiting = False            # a request was sent and its one answer has not come yet
        self.closing = False             # the grader is killing the worker: frames still in the pipe are dropped
        self.unsolicited = False         # a frame came while no request waited: the worker was killed, the file stops

    def open(self, proc):
        """A fresh queue and reader for a process just started."""
        self.replies = queue.Queue(maxsize=REPLY_QUEUE)
        self.awaiting = self.closing = self.unsolicited = False
        threading.Thread(target=self._read, args=(proc, self.replies), daemon=True).start()

    def _read(self, proc, replies):
        """The reader thread: each answer goes to ``replies``, then the end of the channel."""
        end = ("eof", None)                       # also after a refusal: a request waiting wakes up
        try:
            while True:
                message = protocol.read_message(proc.stdout, self.reply_limit, protocol.MAX_HEADER)
                expected = self._expected(replies)
                if expected is None:              # a worker the grader stopped: nothing more to read
                    break
                if not expected:
                    self._refuse("a frame")
                    break
                replies.put_nowait(("reply", message))
        except EOFError:
            pass
        except protocol.ProtocolError as exc:
            if self._expected(replies, taken=False) is False:
                self._refuse(f"a malformed frame ({str(exc)[:200]})")
            else:
                end = ("protocol", str(exc))
        except (OSError, ValueError) as exc:      # the grader closed the pipe while killing the worker
            end = ("protocol", str(exc))
        except queue.Full:                        # cannot happen (one answer per request, then the end)
            self.mark_unsolicited()
            self._refuse("more frames than requests")
        try:
            replies.put_nowait(end)
        except queue.Full:
            pass

    def _expected(self, replies, taken=True):
        """Whether a request waits for this frame (``taken``: it is its answer); if none does, the
        worker is marked ``unsolicited`` in the same step, so that Worker.request sees one or the other.
        None: the grader has stopped this worker (or started another)."""
        with self.lock:
            if replies is not self.replies or self.closing:
                return None
            waiting = self.awaiting
            if taken:
                self.awaiting = False
            if not waiting:
                self.unsolicited = True
            return waiting

    def _refuse(self, what):
        self.kill_group()
        self.on_event(f"unsolicited frame: the worker sent {what} while no request was waiting; it was killed "
                      "and the file's later tests stopped")

    def begin(self):
        """From here on a frame is the answer of the request about to be sent; returns whether one came
        unasked before (the worker was killed for it)."""
        with self.lock:
            refused, self.awaiting = self.unsolicited, True
        return refused

    def abandon(self):
        """The request was not sent after all."""
        with self.lock:
            self.awaiting = False

    def mark_unsolicited(self):
        with self.lock:
            self.unsolicited = True

    def close(self):
        """The grader is killing the worker: what is still in the pipe is dropped."""
        with self.lock:
            self.closing = True

    def stray_reply(self):
        """Whether a frame came before the request was sent (an end of the channel is left for the request)."""
        try:
            stray = self.replies.get_nowait()
        except queue.Empty:
            return False
        if stray[0] == "reply":
            return True
        self.replies.put_nowait(stray)   # eof or a protocol error: the request reports it
        return False

    def wait(self, timeout, watch):
        """The next reply, or ("timeout", None); ``watch`` is called after every half second without one."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return "timeout", None
            try:
                return self.replies.get(timeout=min(left, 0.5))
            except queue.Empty:
                pass
            watch()


class Warden:
    """The bounds the grader keeps on a worker itself: its processes counted and its folders measured during
    and between requests, everything of its uid stopped between requests.  ``limit_hit``: the bound it went
    over (everything of it was killed; the file stops), ``limit_message``: what the student is told of it."""

    def __init__(self, setup, user, folders, on_event, kill_group):
        self.setup = setup               # Worker.setup: its limits
        self.user = user
        self.folders = folders
        self.on_event = on_event
        self.kill_group = kill_group
        self.limit_hit = None
        self.limit_message = OVER_LIMIT
        self.held = None                 # {pid: pidfd} of the worker's processes stopped between two requests
        self.others_seen = False         # processes besides the worker were found between requests (reported)

    def resume(self):
        """Before a request: what was stopped since the last answer (counted then: nothing ran since) goes on;
        if nothing was, the processes are counted now."""
        if self.held is not None:
            reaper.continue_processes(self.held)
            self.held = None
        else:
            self.count_processes()

    def release(self):
        """Before a kill: what was stopped is let go without being continued (SIGKILL ends it as it is)."""
        held, self.held = self.held, None
        reaper.continue_processes(held, resume=False)

    def watch(self):
        """During a request, every half second."""
        self.count_processes()
        self.check_folders()

    def count_processes(self, count=None):
        """As root: too many processes of the worker's user (threads do not show here; processes do) kill
        them all; the request then fails with OVER_LIMIT.  Checked every half second of a request and between
        requests (``count``: the processes ``between`` stopped), so processes started then are counted too."""
        limit = (self.setup.get("limits") or {}).get("processes")
        if self.user is not None and limit and self.limit_hit is None:
            count = reaper.count_processes(self.user[0]) if count is None else count
            if count >= max(4, limit // 4):
                self.over_limit(f"started {count} processes")

    def check_folders(self):
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
            self.over_limit(report.format(mb=mb, files=files),
                            OVER_FOLDERS.format(what=student.format(mb=mb, files=files)))

    def over_limit(self, what, message=OVER_LIMIT):
        """Kill everything of the worker at once; its next request fails with ``message``, fatal."""
        self.limit_hit, self.limit_message = what, message
        self.kill_group()
        if self.user is not None:
            kill_user(*self.user)

    def over_output(self, what):
        """The worker wrote more than limits.output_mb: its process group is killed (the first time)."""
        if self.limit_hit is None:
            self.limit_hit = what
            self.kill_group()

    def between(self, pid=None):
        """After each answer until the next request, nothing of the worker runs: as root, every process of its
        uid is stopped (reaper.stop_user: threads and children alike; ``pid``, the worker's own, first), so
        none spins on the CPU while the grader works between requests; it is counted, and its folders are
        measured while nothing writes.  (Stopping was chosen over charging the CPU time used between requests:
        a charge would come after the grader had lost the time.)  Without a uid of its own (not root) a worker
        is not stopped: its children could not all be found."""
        if POSIX and self.user is not None and self.limit_hit is None:
            self.held = reaper.stop_user(self.user[0], first=() if pid is None else (pid,))
            if self.held is not None:
                if len(self.held) > 1 and not self.others_seen:
                    self.others_seen = True
                    self.on_event(f"{len(self.held) - 1} process(es) of the worker's uid besides the worker were "
                                  "alive between two requests; they were stopped with it until the next request")
                self.count_processes(len(self.held))
        self.check_folders()


class Process:
    """The worker's process: started (forked from the grading's template, else a fresh interpreter) in its own
    session and cgroup, and killed with everything it started."""

    def __init__(self, module, scratch, runtime, python, user, env, cgroup, template, on_event):
        self.module = module
        self.scratch = scratch
        self.runtime = runtime
        self.python = python
        self.user = user
        self.env = env
        self.make_cgroup = cgroup
        self.template = template
        self.on_event = on_event
        self.proc = None
        self.group = None
        self.ooms_before = None          # the kernel's OOM kills before the start (resources.oom_kills)
        self.leftover = []               # pids of the worker's uid that survived the last kill

    def options(self):
        """Popen's options for a fresh worker and the two ends of its events channel (None off POSIX); as root,
        what is left of an earlier grader in this slot is killed first."""
        kwargs = {}
        events_read = events_write = None
        if POSIX:
            kwargs["start_new_session"] = True
            if self.user is not None:
                kill_user(*self.user)        # leftovers of an earlier grader in this slot
                kwargs.update(user=self.user[0], group=self.user[1], extra_groups=[])
            events_read, events_write = os.pipe()
            kwargs["pass_fds"] = (events_write,)
        return kwargs, events_read, events_write

    def spawn(self, kwargs, events_read, events_write):
        """Start ``proc`` in its cgroup; returns the spawn.Forked or None, and the events channel's end the
        grader reads."""
        cmd = [self.python, "-I", os.path.join(self.runtime, "worker.py"), self.scratch, self.module]
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
        return forked, events_read

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill_group(self):
        try:
            if POSIX:
                os.killpg(self.proc.pid, signal.SIGKILL)
            else:
                self.proc.kill()
        except (ProcessLookupError, PermissionError):
            pass

    def kill(self):
        """Kill the process and everything it started: its cgroup, then every task of its uid."""
        if self.proc.poll() is None:
            self.kill_group()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self.kill_group()                    # children left in the group
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


class Worker:
    """One worker as the grader drives it: started, asked, killed.  Its parts: ``process``, ``channel`` (the
    replies), ``output`` (the student's output), ``events`` (the audit hook's lines) and ``warden`` (the
    bounds the grader keeps itself)."""

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
        self.user = user
        self.setup = dict(setup or {})
        self.on_event = on_event or (lambda text: None)
        self.confinement = None          # the setup answer: the layers the worker reports active
        self.next_id = 0
        self.changed = []          # array arguments the last call changed in place (worker-reported)
        self.process = Process(module, scratch, runtime, python or sys.executable, user, env, cgroup, template,
                               self.on_event)
        kill_group = self.process.kill_group
        self.warden = Warden(self.setup, user, list(folders), self.on_event, kill_group)
        self.channel = Channel(reply_limit or protocol.MAX_MESSAGE, self.on_event, kill_group)
        self.events = Events(self.on_event)
        self.output = Output(output_cap, output_limit, self.warden.over_output)

    def start(self, setup_timeout=120.0):
        """Start the worker and confine it (the setup request, within ``setup_timeout`` s); raises WorkerFailure."""
        kwargs, events_read, events_write = self.process.options()
        self.warden.limit_hit = None
        forked, events_read = self.process.spawn(kwargs, events_read, events_write)
        proc = self.process.proc
        self.channel.open(proc)
        self.output.reset()
        threading.Thread(target=self.output.read, args=(proc,), daemon=True).start()
        if events_read is not None:
            self.events.start(events_read)
        if POSIX:
            answer = self.request(protocol.Op.SETUP, setup_timeout,
                                  **dict(self.setup, events_fd=spawn.EVENTS_FD if forked else events_write))
            self.confinement = answer if isinstance(answer, dict) else {}
            if self.confinement.get("seccomp"):
                self.on_event(f"network filter not installed: {self.confinement['seccomp']}")

    def alive(self):
        return self.process.alive()

    def kill(self):
        """Kill the worker and everything it started; what it still sends is dropped."""
        if self.process.proc is None:
            return
        self.channel.close()
        self.warden.release()
        self.process.kill()

    def stop(self):
        self.kill()
        self.process.proc = None

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
        if self.channel.begin():             # the reply reader killed the worker: a frame outside a call
            self.kill()
            raise WorkerFailure(UNSOLICITED, fatal=True)
        self.warden.resume()
        if self.warden.limit_hit:
            return self._died(timeout)
        if not self.alive():
            raise WorkerFailure("the worker is not running")
        if self.channel.stray_reply():       # a frame that came before this request was sent
            self.kill()
            self.on_event("unsolicited frame on the reply channel: a reply nobody asked for")
            raise WorkerFailure(UNSOLICITED, fatal=True)
        self.next_id += 1
        self.events.clear()
        try:
            protocol.write_message(self.process.proc.stdin, dict(fields, op=op.value, id=self.next_id))
        except (BrokenPipeError, OSError):
            return self._died(timeout)
        except protocol.ProtocolError:       # the grader's own request could not be encoded: nothing was sent
            self.channel.abandon()
            raise
        kind, payload = self.channel.wait(timeout, self.warden.watch)
        if kind == "timeout":
            self.kill()
            self.on_event(f"no answer within the time limit of {timeout:g} s ({op.value})")
            output = self.output.suffix()
            raise WorkerFailure(timed_out(timeout) + output, timed_out=True, refused=self.events.kinds(),
                                output=output) from None
        if kind == "reply":
            self.warden.between(self.process.proc.pid)
            return self._answer(payload)
        if kind == "protocol":
            self.kill()
            self.on_event(f"reply refused: {payload}")
            raise WorkerFailure(refused_answer(payload) + self.output.suffix())
        return self._died(timeout)

    def _answer(self, payload):
        """The value of the worker's answer to request ``next_id``, or the StudentError it reports.  The worker's
        own loop always answers with a dict holding "ok" and the request's id: anything else was written by the
        student's code on the grader's channel, as between requests (fatal, so that the outcome does not hang
        on when a thread's frame happens to arrive)."""
        if not isinstance(payload, dict) or "ok" not in payload or payload.get("id") != self.next_id:
            self.kill()
            self.on_event(f"reply refused: request id {self.next_id}, a frame that is not its answer (id "
                          f"{str(payload.get('id') if isinstance(payload, dict) else None)[:40]})")
            self.channel.mark_unsolicited()
            raise WorkerFailure(UNSOLICITED, fatal=True)
        forged = answer_problem(payload)
        if forged:
            self.kill()
            self.on_event(f"reply refused: request id {self.next_id}, an answer the worker did not write ({forged})")
            self.channel.mark_unsolicited()
            raise WorkerFailure(FORGED, fatal=True)
        changed = payload.get("changed")
        self.changed = ([str(name)[:60] for name in changed[:10]] if isinstance(changed, list)
                        else ["(an unreadable list)"] if changed is not None else [])
        if payload["ok"]:
            return payload.get("value")
        raise StudentError(payload.get("error") or {}, refused=refused_kinds(payload.get("refused")))

    def _died(self, timeout):
        """The worker ended (or went over a bound and was killed): the WorkerFailure that says why."""
        proc = self.process.proc
        try:
            code = proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
            code = proc.returncode
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
        if self.warden.limit_hit:
            self.on_event(f"resource limit: the worker {self.warden.limit_hit}; it was killed")
            raise WorkerFailure(self.warden.limit_message, fatal=True)
        if name == "SIGSYS":
            self.on_event("forbidden system call (a network socket or another blocked call): killed by SIGSYS")
            raise WorkerFailure(FORBIDDEN, fatal=True, refused=self.events.kinds())
        ooms = resources.oom_kills()
        if name == "SIGKILL" and ooms is not None and self.process.ooms_before is not None \
                and ooms > self.process.ooms_before:
            memory = (self.setup.get("limits") or {}).get("memory_mb")
            self.on_event(f"out of memory: the kernel's OOM killer stopped the worker (its limit: {memory} MB)")
            raise WorkerFailure(out_of_memory(memory) + self.output.suffix())
        if name in ("SIGXCPU", "SIGXFSZ"):
            which = "CPU time" if name == "SIGXCPU" else "file size"
            self.on_event(f"resource limit: {which} ({name})")
            raise WorkerFailure(OVER_LIMIT, fatal=True)
        self.on_event(f"the worker {what}")
        output = self.output.suffix()
        raise WorkerFailure(f"the process running your code {what}" + output, refused=self.events.kinds(),
                            output=output)
