"""Ending a worker for good: find every task of its uid, kill them all, check that none is left.

Two mechanisms, the stronger first:
- a cgroup of the worker's own (``WorkerCgroup``) where the grader may create one
  (root, a writable cgroup v1 freezer hierarchy or a cgroup v2 tree with
  ``cgroup.kill``): every process the worker starts stays in it, whatever its
  session, process group or parent; the group is frozen, each task killed and the
  group thawed (v1), or killed in one write (v2);
- the uid (``kill_user``): a child process takes the worker's uid and calls
  kill(-1, SIGKILL), which reaches every process of that uid at once, then
  ``tasks_of`` walks /proc/*/task/* to check.  A thread-group leader that has
  exited while its other threads run (a zombie leader) is found through those
  threads, so it counts as alive.

Between two requests the worker's processes are stopped, not killed (``stop_user``,
``continue_processes``): every process of the uid gets SIGSTOP through a pidfd, so
none of its threads or children runs while the grader works.

Neither mechanism relies on the process group, on /proc/<pid>/status of the
leader, or on anything the student's code can change.
"""
import errno
import os
import re
import signal
import time

CGROUP_ROOT = "/sys/fs/cgroup"
_STATUS_UID = re.compile(rb"\nUid:\s+(\d+)")          # the real uid: the first of four
_STATUS_STATE = re.compile(rb"\nState:\s+(\S+)")


def _pids():
    """The pids /proc lists now (as strings); none when /proc cannot be read."""
    try:
        return [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return []


def tasks_of(uid):
    """[(pid, tid, state)] of every task (thread) whose real uid is ``uid`` and that is not dead.

    A task in state Z whose thread group still has live threads shows up through those threads."""
    found = []
    for pid in _pids():
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/status") as fh:
                    fields = dict(line.split(":", 1) for line in fh if ":" in line)
            except (OSError, ValueError):
                continue
            state = fields.get("State", "").split()[:1]
            if int(fields.get("Uid", "-1").split()[0]) == uid and state not in (["Z"], ["X"]):
                found.append((int(pid), int(tid), state[0] if state else "?"))
    return found


def _live_of(pid, want):
    """Whether /proc/``pid`` is a live process (thread group) of the real uid ``want`` (bytes); a zombie
    leader counts while another of its threads lives.  Read with bare os calls: this runs for every
    process of the machine between any two requests of a worker, and a file object costs more than the
    read (the State and Uid lines are in the first few hundred bytes; the name before them is escaped by
    the kernel, so it holds no line break)."""
    try:
        fd = os.open(f"/proc/{pid}/status", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        head = os.read(fd, 4096)
    except OSError:
        return False
    finally:
        os.close(fd)
    uid = _STATUS_UID.search(head)
    if uid is None or uid.group(1) != want:
        return False
    state = _STATUS_STATE.search(head)
    if state is None or state.group(1) not in (b"Z", b"X"):
        return True
    try:
        return len(os.listdir(f"/proc/{pid}/task")) > 1
    except OSError:
        return False


def live_processes(uid):
    """Pids of the live processes of the real uid ``uid``: one status file per process, not one per thread
    as tasks_of reads, so it is cheap enough to take before (and between) every request."""
    want = str(uid).encode()
    return [int(pid) for pid in _pids() if _live_of(pid, want)]


def count_processes(uid):
    """How many live processes (thread groups; a zombie leader whose threads still run counts) have the real
    uid ``uid``."""
    return len(live_processes(uid))


def stop_user(uid, rounds=20, first=()):
    """Stop (SIGSTOP) every process of ``uid``, threads and children alike; returns {pid: pidfd}, the
    processes stopped, for continue_processes; None where the kernel or Python has no pidfds.

    Each process is signalled through a pidfd that is checked, once open, to still be ``uid``'s, so a pid
    reused by someone else's process is never signalled.  A process with a SIGSTOP pending can no longer
    fork (the kernel restarts the fork after the stop), so the scans end once one finds nothing new.
    ``first``: pids to stop before the first scan (the worker itself, which the grader knows), with the
    same checks: where nothing else of ``uid`` lives, one scan of /proc confirms it instead of two."""
    if not hasattr(os, "pidfd_open"):
        return None
    held, want = {}, str(uid).encode()
    seeds = [int(pid) for pid in first]
    for _ in range(rounds):
        if seeds:                                 # not a scan: the loop never ends on these
            new, seeds = seeds, []
        else:
            new = [pid for pid in live_processes(uid) if pid not in held]
            if not new:
                break
        for pid in new:
            try:
                fd = os.pidfd_open(pid)
            except OSError as exc:
                if exc.errno == errno.ENOSYS:
                    continue_processes(held)
                    return None
                continue                          # it ended meanwhile
            if not _live_of(pid, want):
                os.close(fd)
                continue
            held[pid] = fd
            try:
                signal.pidfd_send_signal(fd, signal.SIGSTOP)
            except OSError:
                pass
    return held


def continue_processes(held, resume=True):
    """SIGCONT to every process stop_user stopped (``resume`` False: none, before a kill); closes their pidfds."""
    for fd in (held or {}).values():
        if resume:
            try:
                signal.pidfd_send_signal(fd, signal.SIGCONT)
            except OSError:
                pass
        os.close(fd)


def processes_of(uid):
    """Sorted pids (thread groups) with at least one live task of ``uid``."""
    return sorted({pid for pid, _tid, _state in tasks_of(uid)})


def kill_user(uid, gid, rounds=50):
    """Root only: SIGKILL every process of the dedicated worker uid; returns the pids still alive.

    Never call this for a uid that is anyone's real account."""
    for _ in range(rounds):
        if not tasks_of(uid):
            return []
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            try:
                os.setgroups([])
                os.setgid(gid)
                os.setuid(uid)
                os.kill(-1, signal.SIGKILL)
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        time.sleep(0.02)
    return processes_of(uid)


class WorkerCgroup:
    """A cgroup holding one worker and everything it starts; ``None`` from ``create`` where there is none."""

    def __init__(self, path, version):
        self.path = path
        self.version = version
        self.mechanism = "cgroup v2 cgroup.kill" if version == 2 else "cgroup v1 freezer"

    @classmethod
    def create(cls, name, root=CGROUP_ROOT):
        """A fresh cgroup ``name``, or (None, why not)."""
        if os.name != "posix" or os.geteuid() != 0:
            return None, "not root"
        v1 = os.path.join(root, "freezer")
        if os.path.isfile(os.path.join(v1, "cgroup.procs")):
            parent, version = os.path.join(v1, "nnag"), 1
        elif os.path.isfile(os.path.join(root, "cgroup.controllers")):
            own = _own_v2_path(root)
            if own is None:
                return None, "own cgroup v2 path unknown"
            parent, version = os.path.join(root, own.lstrip("/"), "nnag"), 2
        else:
            return None, f"no cgroup freezer or cgroup v2 under {root}"
        path = os.path.join(parent, name)
        try:
            os.makedirs(parent, exist_ok=True)
            if os.path.isdir(path):
                cls(path, version).destroy()
            os.mkdir(path)
        except OSError as exc:
            return None, f"cannot create {path}: {exc.strerror}"
        group = cls(path, version)
        if version == 2 and not os.path.exists(os.path.join(path, "cgroup.kill")):
            group.destroy()
            return None, "cgroup v2 without cgroup.kill (Linux < 5.14)"
        return group, None

    def add(self, pid):
        """Move ``pid`` in (before it runs student code); False when the kernel refused."""
        try:
            with open(os.path.join(self.path, "cgroup.procs"), "w") as fh:
                fh.write(str(pid))
            return True
        except OSError:
            return False

    def pids(self):
        try:
            with open(os.path.join(self.path, "cgroup.procs")) as fh:
                return [int(x) for x in fh.read().split()]
        except (OSError, ValueError):
            return []

    def _write(self, name, value):
        try:
            with open(os.path.join(self.path, name), "w") as fh:
                fh.write(value)
            return True
        except OSError:
            return False

    def kill(self, rounds=50):
        """Kill every task in the group; returns the pids still in it."""
        for _ in range(rounds):
            if not self.pids():
                return []
            if self.version == 2:
                self._write("cgroup.kill", "1")
            else:
                self._write("freezer.state", "FROZEN")     # no fork can race the kill
                try:
                    with open(os.path.join(self.path, "tasks")) as fh:
                        tids = [int(x) for x in fh.read().split()]
                except (OSError, ValueError):
                    tids = []
                for tid in tids:
                    try:
                        os.kill(tid, signal.SIGKILL)
                    except OSError:
                        pass
                self._write("freezer.state", "THAWED")     # frozen tasks die only once thawed
            time.sleep(0.02)
        return self.pids()

    def destroy(self):
        """Kill what is left and remove the group; returns problems."""
        left = self.kill()
        try:
            os.rmdir(self.path)
        except OSError as exc:
            return [f"cgroup {self.path}: {exc.strerror}" + (f" ({len(left)} tasks left)" if left else "")]
        return []


def _own_v2_path(root):
    try:
        with open("/proc/self/cgroup") as fh:
            for line in fh:
                if line.startswith("0::"):
                    return line[3:].strip()
    except OSError:
        pass
    return None
