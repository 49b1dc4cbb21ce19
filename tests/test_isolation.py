"""The boundaries the kernel enforces (autograder/grader/isolation.py, landlock.py, reaper.py) and the
bounded reply channel (client.py), each tested with an input that tells a working boundary from a missing one."""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest

from conftest import PYTHON, ROOT

sys.path.insert(0, os.path.join(ROOT, "autograder"))
from grader import client, isolation, landlock, reaper, submission  # noqa: E402
from grader import config as config_mod  # noqa: E402
from grader.protocol import Op  # noqa: E402

GRADER = os.path.join(ROOT, "autograder", "grader")
root_only = pytest.mark.skipif(os.name != "posix" or os.geteuid() != 0, reason="needs root (uids, cgroups)")


def landlock_abi():
    try:
        return landlock.abi_version()
    except landlock.LandlockUnavailable:
        return 0


needs_landlock = pytest.mark.skipif(landlock_abi() < 6, reason="needs Landlock ABI 6 (Linux 6.12+)")


# -- Landlock ----------------------------------------------------------------------------------------

ATTEMPTS = """
import os, socket, subprocess, sys
sys.path.insert(0, {grader!r})
sys.path.insert(0, {autograder!r})
import landlock
from grader.isolation import carve
if {on!r}:
    read = [p for root in ("/usr", "/lib", "/lib64", "/bin", "/etc", "/proc", "/sys", "/dev", sys.prefix,
                           sys.base_prefix, {grader!r}, {tmp!r}) for p in carve(root, [{secret!r}])]
    print("abi", landlock.restrict(read, [{own!r}], ["/dev/null"]), flush=True)

def attempt(name, action):
    try:
        action()
        print(name, "ALLOWED", flush=True)
    except OSError:
        print(name, "denied", flush=True)

attempt("read", lambda: open({secret!r} + "/labels").read())
def dir_fd_read():
    fd = os.open({secret!r}, os.O_PATH)
    os.close(os.open("labels", os.O_RDONLY, dir_fd=fd))
attempt("dir_fd", dir_fd_read)
def child():
    if subprocess.run(["/bin/cat", {secret!r} + "/labels"], capture_output=True).returncode:
        raise OSError("cat failed")
attempt("child", child)
attempt("write_outside", lambda: open({tmp!r} + "/outside.txt", "w").close())
attempt("write_own", lambda: open({own!r} + "/ok.txt", "w").close())
attempt("read_beside", lambda: open({tmp!r} + "/beside.txt").read())
attempt("tcp", lambda: socket.create_connection(("127.0.0.1", {port}), timeout=5).close())
attempt("signal", lambda: os.kill(os.getppid(), 0))
def abstract():
    s = socket.socket(socket.AF_UNIX)
    s.connect({abstract!r})
attempt("abstract", abstract)
"""


@needs_landlock
@pytest.mark.parametrize("on", [True, False], ids=["landlock", "without-landlock"])
def test_landlock_keeps_the_worker_in_its_scratch(tmp_path, on):
    """Carved out of an allowed folder, the secret cannot be read directly, through a directory
    descriptor or by a child process; writes go only to the worker's own folder; no TCP connection,
    no signal to a process outside, no abstract socket outside.  Without Landlock every one of them
    works (so each attempt tells the two apart)."""
    secret, own = tmp_path / "secret", tmp_path / "own"
    secret.mkdir()
    own.mkdir()
    (secret / "labels").write_text("7 2 1")
    (tmp_path / "beside.txt").write_text("readable")
    tcp = socket.create_server(("127.0.0.1", 0))
    abstract_name = f"\0nnag-test-{os.getpid()}"
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(abstract_name)
    unix.listen(1)
    code = ATTEMPTS.format(grader=GRADER, autograder=os.path.dirname(GRADER), on=on, tmp=str(tmp_path), secret=str(secret), own=str(own),
                           port=tcp.getsockname()[1], abstract=abstract_name)
    try:
        proc = subprocess.run([PYTHON, "-I", "-c", code], capture_output=True, text=True, timeout=120)
    finally:
        tcp.close()
        unix.close()
    got = dict(line.split(" ", 1) for line in proc.stdout.split("\n") if line)
    assert proc.returncode == 0, proc.stderr
    expect_denied = ["read", "dir_fd", "child", "write_outside", "tcp", "signal", "abstract"]
    if on:
        assert got.pop("abi") == str(min(landlock_abi(), landlock.HIGHEST_KNOWN))
        assert {k: got[k] for k in expect_denied} == {k: "denied" for k in expect_denied}, got
    else:
        assert {k: got[k] for k in expect_denied} == {k: "ALLOWED" for k in expect_denied}, got
    assert got["write_own"] == "ALLOWED" and got["read_beside"] == "ALLOWED", got


def test_carve_leaves_out_exactly_the_denied_folders(tmp_path):
    for rel in ("a/b/keep", "a/b/data/x", "a/c", "d"):
        (tmp_path / rel).mkdir(parents=True)
    denied = [str(tmp_path / "a" / "b" / "data")]
    got = isolation.carve(str(tmp_path), denied)
    assert sorted(got) == sorted(str(tmp_path / p) for p in ("a/b/keep", "a/c", "d"))
    assert isolation.carve(str(tmp_path / "d"), denied) == [str(tmp_path / "d")]
    assert isolation.carve(denied[0], denied) == []


def test_landlock_rules_never_cover_the_data_or_the_grader(tmp_path):
    """The read rules of a real Isolation hold no folder that contains a protected path."""
    config = config_mod.load()
    data = tmp_path / "data"
    data.mkdir()
    iso = isolation.Isolation(config, str(tmp_path), [str(data), GRADER], [str(data), "/usr/share/datasets"])
    denied = [str(data), os.path.realpath(GRADER), "/usr/share/datasets"]
    for rule in iso.read_rules:
        for d in denied:
            assert not (d == rule or d.startswith(rule.rstrip("/") + "/")), (rule, d)
    assert any(r.startswith("/usr/lib") for r in iso.read_rules)
    iso.scratch["numpy_ann"], iso.homes["numpy_ann"] = str(tmp_path / "s"), str(tmp_path / "h")
    setup = iso.setup("numpy_ann", 512)
    assert setup["landlock"]["write"] == [str(tmp_path / "s"), str(tmp_path / "h")]
    assert setup["limits"]["memory_mb"] == 512


def test_landlock_can_be_forced_off(monkeypatch):
    config = config_mod.load()
    assert isolation.landlock_wanted(config) == (True, None)
    monkeypatch.setenv("NNAG_LANDLOCK", "off")
    wanted, why = isolation.landlock_wanted(config)
    assert not wanted and why.startswith("off:")


# -- the kill ----------------------------------------------------------------------------------------

ZOMBIE_LEADER = """
import ctypes, threading, time
threading.Thread(target=lambda: time.sleep(600)).start()
print("ready", flush=True)
ctypes.CDLL(None).syscall(60, 0)     # SYS_exit: only the main thread ends; the process lives on
"""


@root_only
def test_taking_a_slot_kills_what_a_dead_grader_left_under_its_uids(private_slots):
    """A grader killed without its cleanup leaves its workers running: the next grader to take that slot ends
    them before any of its own workers runs under those uids.  (One private slot: the next take is that slot,
    whatever make test's other graders do.)"""
    config, _ = private_slots(1)
    first = isolation.take_slot(config)
    first.release()                                  # the slot is free again, as when its grader died
    left = subprocess.Popen(["sleep", "600"], user=first.uids[0], group=first.gid, extra_groups=[], cwd="/",
                            start_new_session=True)
    try:
        assert reaper.processes_of(first.uids[0]) == [left.pid]
        again = isolation.take_slot(config)
        try:
            assert again.number == first.number and reaper.processes_of(first.uids[0]) == []
            assert left.wait(timeout=10) == -signal.SIGKILL
        finally:
            again.release()
    finally:
        if left.poll() is None:
            left.kill()
            left.wait()


@root_only
def test_a_zombie_leader_with_live_threads_is_found_and_killed(slot):
    gid, uids = slot.gid, slot.uids
    uid = uids[-1]
    proc = subprocess.Popen([PYTHON, "-I", "-c", ZOMBIE_LEADER], user=uid, group=gid, extra_groups=[],
                            stdout=subprocess.PIPE, text=True, cwd="/", start_new_session=True)
    try:
        assert proc.stdout.readline() == "ready\n"
        for _ in range(100):
            with open(f"/proc/{proc.pid}/status") as fh:
                leader = [line.split()[1] for line in fh if line.startswith("State:")][0]
            if leader == "Z":
                break
            time.sleep(0.05)
        assert leader == "Z", "the leader did not exit (the test would not tell the two walks apart)"
        assert reaper.processes_of(uid) == [proc.pid]           # found through its live thread
        assert reaper.count_processes(uid) == 1                  # and counted (the cheap count before requests)
        assert reaper.kill_user(uid, gid) == []
        assert reaper.tasks_of(uid) == [] and reaper.count_processes(uid) == 0
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)


DAEMON = """
import os, sys, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        print(os.getpid(), flush=True)
        time.sleep(600)
    os._exit(0)
time.sleep(600)
"""


@root_only
def test_a_cgroup_holds_a_setsid_daemon_and_kills_it(slot):
    group, why = reaper.WorkerCgroup.create(f"test-{os.getpid()}")
    if group is None:
        pytest.skip(f"no cgroup for workers here: {why}")
    read, write = os.pipe()
    proc = subprocess.Popen([PYTHON, "-I", "-c", f"import os; os.read({read}, 1)\n" + DAEMON], pass_fds=(read,),
                            stdout=subprocess.PIPE, text=True, user=slot[2][-1], group=slot[1], extra_groups=[])
    try:
        assert group.add(proc.pid)
        os.write(write, b"x")                            # only now does it fork
        daemon = int(proc.stdout.readline())
        assert daemon in group.pids() and os.getsid(daemon) != os.getsid(proc.pid)
        assert group.kill() == []
        time.sleep(0.1)
        assert not os.path.exists(f"/proc/{daemon}/status") or "Z" in open(f"/proc/{daemon}/status").read()
        assert group.destroy() == [] and not os.path.exists(group.path)
    finally:
        os.close(read)
        os.close(write)
        if proc.poll() is None:
            proc.kill()
        proc.wait()


# -- between requests: stopped, counted, measured (client.Warden.between) ----------------------------

BUSY = """
import os, threading, time


def spin():
    def loop():
        while True:
            pass
    threading.Thread(target=loop, daemon=True).start()
    if os.fork() == 0:
        loop()
    return 1


def wait(seconds):
    time.sleep(seconds)
    return 2


def write(count, size):
    os.makedirs("out", exist_ok=True)
    for i in range(count):
        with open(f"out/{i}", "wb") as fh:
            fh.write(os.urandom(size))
    return count
"""


@pytest.fixture
def uid_worker(slot):
    """A real worker running BUSY as a slot's uid (as the grader runs one), its scratch limited to 50 entries
    and 4 MB."""
    base = tempfile.mkdtemp(prefix="nnag-test-between-")
    os.chmod(base, 0o711)
    uid, gid = slot.uids[-1], slot.gid
    scratch = os.path.join(base, "scratch")
    os.mkdir(scratch, 0o700)
    with open(os.path.join(scratch, "busy.py"), "w") as fh:
        fh.write(BUSY)
    for path in (scratch, os.path.join(scratch, "busy.py")):
        os.chown(path, uid, gid)
    events = []
    limits = dict(config_mod.load()["limits"], scratch_files=50, scratch_mb=4)
    worker = client.Worker("busy", scratch, client.prepare_runtime(os.path.join(base, "runtime")), python=PYTHON,
                           user=(uid, gid), env={"PATH": "/usr/bin:/bin", "HOME": scratch, "OMP_NUM_THREADS": "1"},
                           setup={"limits": limits, "protected": [], "writable": [scratch]}, on_event=events.append,
                           folders=[scratch])
    try:
        worker.start()
        worker.request(Op.IMPORT, 60)
        yield worker, events, uid
    finally:
        worker.stop()
        reaper.kill_user(uid, gid)
        submission.remove_tree(base)


def cpu_ticks(pid):
    """utime + stime of the process (all its threads), in clock ticks."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


@root_only
def test_nothing_of_the_worker_runs_between_requests(uid_worker):
    """A call leaves a thread and a child process spinning: from its answer to the next request both are
    stopped (their CPU time does not move in a second), the report names the child, and during the next
    request both run again."""
    worker, events, uid = uid_worker
    assert worker.request(Op.CALL, 30, target="module", method="spin") == 1
    pids = reaper.live_processes(uid)
    assert len(pids) == 2 and worker.process.proc.pid in pids
    before = {pid: cpu_ticks(pid) for pid in pids}
    time.sleep(1)
    assert {pid: cpu_ticks(pid) for pid in pids} == before, "a process of the worker ran between two requests"
    assert any("1 process(es) of the worker's uid besides the worker" in e for e in events), events
    assert worker.request(Op.CALL, 30, target="module", method="wait", args=[1]) == 2
    assert all(cpu_ticks(pid) > before[pid] for pid in pids), "the worker's processes were not continued"


def process_state(pid):
    with open(f"/proc/{pid}/status") as fh:
        return next(line.split()[1] for line in fh if line.startswith("State:"))


@root_only
def test_stop_user_checks_the_pids_it_is_given_first_and_still_scans(slot):
    """reaper.stop_user(uid, first=...), as between two requests with the worker's pid: a given pid of another
    user (root's) is neither held nor stopped, and with the first of the uid's two processes given, the scan
    that follows still finds and stops the second (a stop that trusted the given pids alone would miss it)."""
    uid, gid = slot.uids[-1], slot.gid
    ours = [subprocess.Popen(["sleep", "60"], user=uid, group=gid, extra_groups=[], start_new_session=True)
            for _ in range(2)]
    root_own = subprocess.Popen(["sleep", "60"])
    held = None
    try:
        for _ in range(100):
            if len(reaper.live_processes(uid)) == 2:
                break
            time.sleep(0.05)
        held = reaper.stop_user(uid, first=(ours[0].pid, root_own.pid))
        assert sorted(held) == sorted(p.pid for p in ours)
        for _ in range(100):
            if all(process_state(p.pid) == "T" for p in ours):
                break
            time.sleep(0.05)
        assert [process_state(p.pid) for p in ours] == ["T", "T"]
        assert process_state(root_own.pid) != "T"
    finally:
        reaper.continue_processes(held)
        for p in (*ours, root_own):
            p.kill()
            p.wait()


@root_only
@pytest.mark.parametrize("count, size, what", [(60, 0, "more than 50 files and folders"),
                                               (6, 1 << 20, "more than 4 MB to disk")])
def test_a_worker_over_its_folder_limits_stops_its_file(uid_worker, count, size, what):
    """A call writes 60 empty files (limit 50 entries) or 6 MB in files of 1 MB (limit 4 MB, each file under
    file_size_mb): the worker is killed after its answer, the report says which limit, and through
    session.StudentFile the next test fails with the plain message and every later one with it (no new worker)."""
    from types import SimpleNamespace
    from grader import session as session_mod
    from grader.checks import GradeFailure
    worker, events, uid = uid_worker
    assert worker.request(Op.CALL, 30, target="module", method="write", args=[count, size]) == count
    assert reaper.live_processes(uid) == []
    clock = SimpleNamespace(limit=lambda stem, seconds: (seconds, False))
    stub = SimpleNamespace(requests=0, clock=clock, scratch={}, config={"time_limits": {"call": 5}})
    student_file = session_mod.StudentFile(stub, "numpy_ann")
    student_file.worker = worker
    with pytest.raises(GradeFailure) as info:
        student_file.request(Op.CALL, None, what="_relu", target="module", method="wait", args=[0])
    assert str(info.value).startswith(f"_relu: this file's tests stopped: your code wrote {what} in its folder")
    assert "Write less to disk" in str(info.value) and "Traceback" not in str(info.value)
    assert [e for e in events if e.startswith("resource limit: the worker filled its folders beyond limits.scratch_")]
    with pytest.raises(session_mod.Unavailable, match="Write less to disk.*Every later test of numpy_ann.py fails"):
        student_file.request(Op.CALL, None, what="_softmax")


# -- the reply channel -------------------------------------------------------------------------------

STUDENT = """
import os, stat, threading, time
import protocol


def _pipes():
    # every pipe this process may write other than stdout and stderr: the grader's channels
    import fcntl
    out = []
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            if fd > 2 and stat.S_ISFIFO(os.fstat(fd).st_mode) and fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_WRONLY:
                out.append(fd)
        except OSError:
            pass
    return out


def forge(reply_id):
    for fd in _pipes():
        os.write(fd, protocol.encode({"ok": True, "value": 42, "id": reply_id}))
    time.sleep(2)
    return 7


def forge_answer(kind):
    # the answer to this very call, written on the reply channel (main's writer, found through the frames)
    # with the pending request's id, before the worker's own
    import inspect, io
    import numpy as np
    frames = [f.frame for f in inspect.stack()]
    request = next(f.f_locals["request"] for f in frames
                   if isinstance(f.f_locals.get("request"), dict) and "id" in f.f_locals["request"])
    out = next(v for f in frames for v in f.f_locals.values()
               if isinstance(v, io.BufferedWriter) and not v.closed and v.fileno() > 2)
    answer = {"arrays": {"ok": False, "error": {"type": "ValueError", "message": [np.zeros(10) + i for i in range(5)],
                                                 "where": None}},
              "long_type": {"ok": False, "error": {"type": "E" * 5000, "message": "m", "where": None}},
              "refused_arrays": {"ok": True, "value": 1, "refused": [np.zeros(2), np.ones(2)]},
              "changed_text": {"ok": True, "value": 1, "changed": "x" * 100}}[kind]
    out.write(protocol.encode(dict(answer, id=request["id"])))
    out.flush()
    time.sleep(5)
    return 0


def forge_later():
    def later():
        time.sleep(0.5)
        forge(99)
    threading.Thread(target=later, daemon=True).start()
    return 1


def flood_events():
    def flood(fd):
        os.write(fd, b"x" * 5_000_000)
        os.write(fd, b"\\ncheck: nothing to report \\x1b[31m\\x00 forged\\n" * 20000)
    import gc, inspect, io
    found = list(gc.get_objects()) + [v for f in inspect.stack() for v in f.frame.f_locals.values()]
    reply = {o.fileno() for o in found if isinstance(o, io.BufferedWriter) and not o.closed
             and o.fileno() > 2}                       # the worker's reply channel (main's): leave it alone
    for fd in _pipes():
        if fd not in reply:
            flood(fd)
    return 3
"""


@pytest.fixture
def student_worker(tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (scratch / "evil.py").write_text(STUDENT)
    runtime = client.prepare_runtime(str(tmp_path / "runtime"))
    events = []
    limits = dict(config_mod.load()["limits"], processes=None)
    worker = client.Worker("evil", str(scratch), runtime, python=PYTHON, env=dict(os.environ),
                           setup={"limits": limits, "protected": [], "writable": [str(scratch)]},
                           on_event=events.append)
    worker.start()
    worker.request(Op.IMPORT, 60)
    yield worker, events
    worker.stop()


@pytest.mark.skipif(os.name != "posix", reason="the worker's channels are POSIX pipes")
def test_a_forged_reply_with_the_wrong_id_is_refused(student_worker):
    worker, _ = student_worker
    with pytest.raises(client.WorkerFailure, match="sent data to the grader outside a call") as caught:
        worker.request(Op.CALL, 30, target="module", method="forge", args=[worker.next_id + 5])
    assert caught.value.fatal and not worker.alive()
    with pytest.raises(client.WorkerFailure, match="outside a call"):        # and for good
        worker.request(Op.CALL, 30, target="module", method="forge", args=[worker.next_id + 1])


@pytest.mark.skipif(os.name != "posix", reason="the worker's channels are POSIX pipes")
@pytest.mark.parametrize("kind", ["arrays", "long_type", "refused_arrays", "changed_text"])
def test_an_answer_the_worker_did_not_write_is_refused(student_worker, kind):
    """An answer with the right id whose error, refused or changed field is not what the worker's loop writes
    (arrays for a message, a 5,000-character type, arrays for refused kinds, a text for changed names) is
    refused before any of it is formatted: the worker is killed and the file's later tests stop."""
    worker, events = student_worker
    with pytest.raises(client.WorkerFailure, match="wrote an answer on the grader's channel itself") as info:
        worker.request(Op.CALL, 30, target="module", method="forge_answer", args=[kind])
    assert info.value.fatal and not worker.alive()
    assert any("an answer the worker did not write" in e for e in events), events
    assert len(str(info.value)) < 300


@pytest.mark.skipif(os.name != "posix", reason="the worker's channels are POSIX pipes")
def test_a_reply_nobody_asked_for_is_refused(student_worker):
    """A thread left running forges a reply between two requests: the worker is killed when it comes, and
    the next request fails for good (fatal: the file's later tests stop)."""
    worker, events = student_worker
    assert worker.request(Op.CALL, 30, target="module", method="forge_later") == 1
    deadline = time.monotonic() + 10
    while worker.alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not worker.alive(), "the worker still runs after a frame nobody asked for"
    assert any(e.startswith("unsolicited frame:") for e in events), events
    with pytest.raises(client.WorkerFailure, match="outside a call") as info:
        worker.request(Op.CALL, 30, target="module", method="forge_later")
    assert info.value.fatal


@pytest.mark.skipif(os.name != "posix", reason="the worker's channels are POSIX pipes")
def test_the_events_channel_is_capped_in_the_grader(student_worker):
    """Megabytes without a newline and 20,000 forged lines with control characters reach the report
    as at most EVENTS_PER_WORKER cleaned, cut lines, each marked as the worker's, and one note."""
    worker, events = student_worker
    assert worker.request(Op.CALL, 60, target="module", method="flood_events") == 3
    worker.stop()
    time.sleep(0.5)
    from_worker = [e for e in events if e.startswith("worker: ")]
    assert 0 < len(from_worker) <= client.EVENTS_PER_WORKER
    assert all(len(e) <= len("worker: ") + client.EVENT_LINE_CHARS + len(" [cut]") for e in events)
    assert all(e.isprintable() for e in events)
    assert not any(e.startswith("check:") for e in events)
    assert any("more lines from the worker's events channel dropped" in e for e in events)


@pytest.mark.skipif(sys.platform != "linux", reason="seccomp and Landlock are Linux features")
def test_the_worker_confines_itself_before_torch_starts_threads(tmp_path):
    """seccomp and Landlock bind only the calling thread: the worker must apply them while it is alone,
    before torch (imported for a file that uses it) starts its thread pools."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (scratch / "uses_torch.py").write_text("import torch\n\ndef threads():\n    return len(__import__('os').listdir('/proc/self/task'))\n")
    config = config_mod.load()
    iso = isolation.Isolation(config, str(tmp_path), [], [])
    iso.scratch["numpy_ann"], iso.homes["numpy_ann"] = str(scratch), str(scratch)
    iso.runtime = client.prepare_runtime(str(tmp_path / "runtime"))
    setup = iso.setup("numpy_ann", 2048)
    setup["limits"]["processes"] = None
    worker = client.Worker("uses_torch", str(scratch), iso.runtime, python=PYTHON, env=dict(os.environ, OMP_NUM_THREADS="2"),
                           setup=setup)
    try:
        worker.start()
        worker.request(Op.IMPORT, 120)
        later = worker.request(Op.CALL, 60, target="module", method="threads")
    finally:
        worker.stop()
    assert worker.confinement["threads_alive"] == 1
    assert worker.confinement["seccomp"] is None
    expected = f"ABI {min(landlock_abi(), landlock.HIGHEST_KNOWN)}" if landlock_abi() else "off"
    assert str(worker.confinement["landlock"]).startswith(expected), worker.confinement
    assert later >= 1


@root_only
def test_a_uid_that_survived_is_replaced_by_a_spare(tmp_path):
    config = config_mod.load()
    iso = isolation.Isolation(config, str(tmp_path), [], [])
    try:
        scratch = tmp_path / "scratch"
        (scratch / "sub").mkdir(parents=True)
        (scratch / "sub" / "f").write_text("x")
        iso.scratch["numpy_ann"] = str(scratch)
        first = iso.user("numpy_ann")[0]
        spares = list(iso.spares)
        assert first not in spares and len(set(iso.uids.values())) == 4
        new = iso.replace_user("numpy_ann", "test")
        assert new == spares[0] and iso.user("numpy_ann")[0] == new
        assert os.stat(scratch / "sub" / "f").st_uid == new and os.stat(scratch).st_uid == new
        for _ in spares[1:]:
            assert iso.replace_user("numpy_ann", "test") is not None
        assert iso.replace_user("numpy_ann", "test") is None          # no spare left
        assert len(iso.describe()["uids_retired"]) == len(spares) + 1
    finally:
        iso.release()
