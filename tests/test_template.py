"""The worker template (autograder/grader/template.py, spawn.py): a forked worker is the worker a fresh
start makes (uid, groups, session, descriptors, environment, folder, confinement), holds nothing of the
grader's, and wherever the template cannot serve, workers start afresh and the report says why."""
import os
import re
import secrets
import signal
import sys
import tempfile

import pytest

from conftest import PYTHON, ROOT

sys.path.insert(0, os.path.join(ROOT, "autograder"))
from grader import client, reaper, spawn, submission  # noqa: E402
from grader import config as config_mod  # noqa: E402
from grader.protocol import Op  # noqa: E402

pytestmark = pytest.mark.skipif(sys.platform != "linux" or not hasattr(os, "pidfd_open"),
                                reason="the template needs Linux pidfds")
root_only = pytest.mark.skipif(os.name != "posix" or os.geteuid() != 0, reason="needs root (uids)")

# What a worker process is, seen from inside at import time and later.
PROBE = r'''
import os, signal, sys

def _fds():
    out = []
    for fd in sorted(os.listdir("/proc/self/fd"), key=int):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        out.append(target.split(":[")[0])
    return sorted(out)

def _status(key):
    with open("/proc/self/status") as fh:
        return next((line.split(":", 1)[1].split() for line in fh if line.startswith(key + ":")), None)

AT_IMPORT = {"fds": _fds(), "threads": len(os.listdir("/proc/self/task")),
             "preloaded": sorted(m for m in ("torch", "torch._dynamo") if m in sys.modules)}

def describe():
    with open("/proc/self/environ", "rb") as fh:
        first_environ = fh.read().decode("utf-8", "replace")
    return dict(AT_IMPORT, uid=os.getuid(), euid=os.geteuid(), gid=os.getgid(), groups=sorted(os.getgroups()),
                session_leader=os.getsid(0) == os.getpid(), cwd=os.getcwd(), env=dict(os.environ),
                cap_eff=_status("CapEff"), seccomp=_status("Seccomp"), no_new_privs=_status("NoNewPrivs"),
                sigpipe=str(signal.getsignal(signal.SIGPIPE)), first_environ=first_environ)

def leave(code):
    os._exit(code)
'''


@pytest.fixture
def folder():
    base = tempfile.mkdtemp(prefix="nnag-test-template-")
    os.chmod(base, 0o711)
    yield base
    submission.remove_tree(base)


def make_worker(base, name, template, user=None, events=None, env=None):
    scratch = os.path.join(base, name)
    os.mkdir(scratch, 0o700)
    with open(os.path.join(scratch, "probe.py"), "w") as fh:
        fh.write(PROBE)
    if user:
        for path in (scratch, os.path.join(scratch, "probe.py")):
            os.chown(path, *user)
    runtime = os.path.join(base, "runtime")
    if not os.path.isdir(runtime):
        client.prepare_runtime(runtime)
    setup = {"limits": dict(config_mod.load()["limits"], processes=None), "protected": [], "writable": [scratch]}
    env = env or {"PATH": "/usr/bin:/bin", "HOME": scratch, "LANG": "C.UTF-8", "OMP_NUM_THREADS": "1",
                  "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    return client.Worker("probe", scratch, runtime, python=PYTHON, user=user, env=env, setup=setup,
                         on_event=(events if events is not None else []).append, template=template)


def described(worker):
    worker.start()
    worker.request(Op.IMPORT, 120)
    return worker.request(Op.CALL, 60, target="module", method="describe")


def template_for(base, env=None, preload=()):
    runtime = os.path.join(base, "runtime")
    if not os.path.isdir(runtime):
        client.prepare_runtime(runtime)
    return spawn.Template(PYTHON, runtime, env or {"PATH": "/usr/bin:/bin", "HOME": runtime, "LANG": "C.UTF-8",
                                                  "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                                                  "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg"}, preload=preload)


def readable_memory(pid):
    """The bytes of every private writable mapping of ``pid`` (root reads another uid's memory)."""
    chunks = []
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for line in maps:
            span, perms = line.split()[:2]
            if not perms.startswith("rw"):
                continue
            start, end = (int(x, 16) for x in span.split("-"))
            try:
                mem.seek(start)
                chunks.append(mem.read(end - start))
            except (OSError, OverflowError):
                continue
    return b"".join(chunks)


@root_only
def test_a_forked_worker_is_what_a_fresh_start_makes(folder, slot):
    """The same module described from inside, started afresh and forked from the template as a slot's uid:
    uid, gid, no groups, its own session, the same kinds of descriptors at import, one thread, the file's
    environment exactly (the grader's is not there, nor anything of the template's own), its folder, no
    capabilities, the seccomp filter; and the template really forked it."""
    user = (slot.uids[-1], slot.gid)
    os.environ["NNAG_TEST_GRADER_ONLY"] = "grader's own"
    groups = os.getgroups()
    os.setgroups(groups + [54321])          # a group the template inherits and its workers must not keep
    template = template_for(folder, preload=("torch._dynamo",))     # started at the first worker, below,
    # with the extra group
    try:
        fresh_worker = make_worker(folder, "fresh", None, user)
        forked_worker = make_worker(folder, "forked", template, user)
        fresh, forked = described(fresh_worker), described(forked_worker)
        os.setgroups(groups)
        assert isinstance(forked_worker.process.proc, spawn.Forked) and template.forks == 1, template.problem
        assert not isinstance(fresh_worker.process.proc, spawn.Forked)
    finally:
        for w in ("fresh_worker", "forked_worker"):
            if w in locals():
                locals()[w].stop()
        template.close()
        reaper.kill_user(*user)
        del os.environ["NNAG_TEST_GRADER_ONLY"]
        os.setgroups(groups)
    for key in ("uid", "euid", "gid", "groups", "session_leader", "threads", "fds", "cap_eff", "seccomp",
                "no_new_privs", "sigpipe"):
        assert forked[key] == fresh[key], (key, forked[key], fresh[key])
    assert forked["uid"] == user[0] and forked["groups"] == [] and forked["session_leader"]
    assert forked["cwd"] == os.path.join(folder, "forked") and fresh["cwd"] == os.path.join(folder, "fresh")
    assert {k: v for k, v in forked["env"].items() if k != "HOME"} == \
        {k: v for k, v in fresh["env"].items() if k != "HOME"}
    assert forked["env"]["HOME"] == os.path.join(folder, "forked")
    assert "NNAG_TEST_GRADER_ONLY" not in forked["first_environ"] + str(forked["env"])
    assert forked["threads"] == 1
    # what the template loads once for every worker (torch, and as asked the compiler torch loads at the first
    # optimiser, which each training test's fresh worker paid for again); a fresh start loads the compiler
    # only when an optimiser is made
    assert forked["preloaded"] == ["torch", "torch._dynamo"] and "torch._dynamo" not in fresh["preloaded"]


def test_the_template_loads_the_compiler_only_where_the_container_sets_no_memory_limit(monkeypatch):
    """isolation.template_preload: torch._dynamo where no container memory limit is found (the staff's machines),
    nothing more under one (Gradescope: the template lives beside numpy_ann's fresh workers, whose limit does
    not count it); template.py loads only the names of its PRELOADABLE list."""
    from grader import isolation
    monkeypatch.setattr(isolation.resources, "memory_limit_mb", lambda root="/": None)
    assert isolation.template_preload() == ("torch._dynamo",)
    monkeypatch.setattr(isolation.resources, "memory_limit_mb", lambda root="/": 768)
    assert isolation.template_preload() == ()
    import importlib.util
    spec = importlib.util.spec_from_file_location("nnag_template_under_test",
                                                  os.path.join(ROOT, "autograder", "grader", "template.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.PRELOADABLE == {"torch._dynamo"}


@root_only
def test_nothing_of_the_graders_memory_reaches_a_forked_worker(folder, slot):
    """A secret held in the grader's memory and environment when the template starts is nowhere in the
    forked worker's writable memory (read as root through /proc/<pid>/mem); the same read finds a value
    the worker itself holds, so the search can tell."""
    user = (slot.uids[-1], slot.gid)
    secret = "nnag-secret-" + secrets.token_hex(16)
    held = [secret.encode() * 3]                  # noqa: F841 - kept alive in the grader's memory
    os.environ["NNAG_TEST_SECRET"] = secret
    template = template_for(folder)
    worker = make_worker(folder, "forked", template, user)
    try:
        worker.start()
        worker.request(Op.IMPORT, 120)
        own = "worker-own-" + secrets.token_hex(8)
        worker.request(Op.SETATTR, 30, target="module", name="MARK", value=own)
        assert isinstance(worker.process.proc, spawn.Forked), template.problem
        memory = readable_memory(worker.process.proc.pid)
    finally:
        worker.stop()
        template.close()
        reaper.kill_user(*user)
        del os.environ["NNAG_TEST_SECRET"]
    assert own.encode() in memory
    assert secret.encode() not in memory


def test_where_the_template_cannot_serve_workers_start_afresh(folder):
    """A template that cannot start, or has more than one thread after loading its libraries (it refuses to
    fork), serves no worker: each starts afresh, works, and the report says once why."""
    broken = spawn.Template("/nonexistent/python3", os.path.join(folder, "runtime"), {})
    client.prepare_runtime(os.path.join(folder, "runtime"))
    threaded = template_for(folder, {"PATH": "/usr/bin:/bin", "OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "2"})
    for name, template, why in (("a", broken, "could not start"), ("b", threaded, r"\d threads after loading")):
        events = []
        workers = [make_worker(folder, f"{name}{i}", template, events=events) for i in range(2)]
        try:
            for worker in workers:
                assert described(worker)["threads"] == 1
                assert not isinstance(worker.process.proc, spawn.Forked)
        finally:
            for worker in workers:
                worker.stop()
            template.close()
        said = [e for e in events if e.startswith("worker template not used")]
        assert len(said) == 1 and re.search(why, said[0]), events


def test_a_forked_workers_exit_and_the_templates_end(folder):
    """A forked worker's exit code comes from the template as a fresh one's would; when the template is
    killed, a running forked worker still answers and is stopped, and the next worker starts afresh."""
    template = template_for(folder)
    events = []
    first = make_worker(folder, "first", template, events=events)
    second = make_worker(folder, "second", template, events=events)
    third = make_worker(folder, "third", template, events=events)
    try:
        described(first)
        assert isinstance(first.process.proc, spawn.Forked), template.problem
        with pytest.raises(client.WorkerFailure, match="exited with code 7"):
            first.request(Op.CALL, 30, target="module", method="leave", args=[7])
        assert first.process.proc.poll() == 7
        described(second)
        os.kill(template.proc.pid, signal.SIGKILL)
        assert second.request(Op.CALL, 30, target="module", method="describe")["threads"] == 1
        assert second.alive()
        second.stop()
        assert not second.alive()
        assert described(third)["threads"] == 1 and not isinstance(third.process.proc, spawn.Forked)
        assert any(e.startswith("worker template not used") for e in events), events
    finally:
        for worker in (first, second, third):
            worker.stop()
        template.close()


def test_the_template_ends_by_itself_when_the_grader_closes_it(folder):
    """close() gives the template its EOF although the reader thread is blocked in recv() on the channel:
    the template exits by itself (code 0), instead of being killed after close()'s 5-second wait (which
    every grading paid before the channel was shut down)."""
    template = template_for(folder)
    worker = make_worker(folder, "one", template)
    try:
        described(worker)
        assert isinstance(worker.process.proc, spawn.Forked), template.problem
    finally:
        worker.stop()
    proc = template.proc
    template.close()
    assert proc.returncode == 0, f"the template was killed (code {proc.returncode}) instead of ending on EOF"
