"""The worker's confinement (autograder/grader/sandbox.py) and the grader's worker slots, one piece at a time."""
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from conftest import PYTHON, ROOT

GRADER = os.path.join(ROOT, "autograder", "grader")
linux_only = pytest.mark.skipif(sys.platform != "linux", reason="seccomp and these rlimits are Linux features")


def run_confined(body, timeout=120):
    code = f"import sys\nsys.path.insert(0, {GRADER!r})\nimport sandbox\n" + textwrap.dedent(body)
    return subprocess.run([PYTHON, "-I", "-c", code], capture_output=True, text=True, timeout=timeout)


@linux_only
def test_network_filter_kills_inet_sockets_and_allows_unix_ones():
    proc = run_confined("""
        import socket
        assert sandbox.block_network() is None
        a, b = socket.socketpair()
        socket.socket(socket.AF_UNIX).close()
        print("unix ok", flush=True)
        socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        print("inet survived", flush=True)
    """)
    assert "unix ok" in proc.stdout and "inet survived" not in proc.stdout
    assert proc.returncode == -signal.SIGSYS, (proc.returncode, proc.stderr)


@linux_only
def test_sysv_ipc_is_refused_by_the_filter():
    """SysV shared memory, semaphores and message queues outlive the worker and no limit counts them:
    creating one fails with EPERM under the filter (and works without it, so the check can fail)."""
    body = """
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        IPC_PRIVATE, IPC_CREAT = 0, 0o1000
        if FILTER:
            assert sandbox.block_network() is None
        results = []
        for name, call in (("shmget", lambda: libc.shmget(IPC_PRIVATE, 1 << 20, IPC_CREAT | 0o600)),
                           ("semget", lambda: libc.semget(IPC_PRIVATE, 1, IPC_CREAT | 0o600)),
                           ("msgget", lambda: libc.msgget(IPC_PRIVATE, IPC_CREAT | 0o600))):
            ident = call()
            results.append(f"{name}={'EPERM' if ident == -1 and ctypes.get_errno() == 1 else 'created'}")
            if ident != -1:                                        # leave nothing behind
                {"shmget": lambda: libc.shmctl(ident, 0, None), "semget": lambda: libc.semctl(ident, 0, 0),
                 "msgget": lambda: libc.msgctl(ident, 0, None)}[name]()
        print(" ".join(results))
    """
    blocked = run_confined("FILTER = True\n" + textwrap.dedent(body))
    assert blocked.stdout.split() == ["shmget=EPERM", "semget=EPERM", "msgget=EPERM"], blocked.stderr
    free = run_confined("FILTER = False\n" + textwrap.dedent(body))
    assert free.stdout.split() == ["shmget=created", "semget=created", "msgget=created"], free.stderr


@linux_only
def test_limits_stop_a_10_gb_allocation_and_a_huge_file(tmp_path):
    proc = run_confined(f"""
        import os, signal
        sandbox.set_limits({{"cpu_seconds": 60, "memory_mb": 2048, "processes": None, "file_size_mb": 1,
                             "open_files": 64}})
        import numpy as np
        try:
            np.ones(10 * 2**30 // 8)
            print("allocated")
        except MemoryError:
            print("MemoryError", flush=True)
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
        with open({str(tmp_path / "big")!r}, "wb") as fh:
            fh.write(b"x" * (2 << 20))
        print("wrote 2 MB")
    """)
    assert "MemoryError" in proc.stdout and "allocated" not in proc.stdout
    assert "wrote 2 MB" not in proc.stdout and proc.returncode == -signal.SIGXFSZ, (proc.returncode, proc.stderr)


def test_audit_hook_refuses_protected_paths_and_outside_writes(tmp_path):
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "labels").write_text("7 2 1")
    own = tmp_path / "own"
    own.mkdir()
    events = tmp_path / "events"
    proc = run_confined(f"""
        import os
        fd = os.open({str(events)!r}, os.O_WRONLY | os.O_CREAT)
        sandbox.install_guard(fd, {str(own)!r}, [{str(secret)!r}], [{str(own)!r}])
        for attempt in (lambda: open({str(secret / "labels")!r}).read(),
                        lambda: os.listdir({str(secret)!r}),
                        lambda: open({str(tmp_path / "outside.txt")!r}, "w")):
            try:
                attempt()
                print("ALLOWED")
            except PermissionError:
                print("refused")
        with open({str(own / "ok.txt")!r}, "w") as fh:
            fh.write("fine")
        print("own folder ok")
    """)
    assert proc.stdout.split() == ["refused", "refused", "refused", "own", "folder", "ok"], proc.stderr
    log = events.read_text()
    assert "refused: reading" in log and "refused: os.listdir" in log and "outside the worker's folders" in log


@pytest.mark.skipif(os.name != "posix" or os.geteuid() != 0, reason="worker slots exist only when root")
def test_concurrent_graders_get_different_worker_uids():
    code = ("import sys, time; sys.path.insert(0, 'autograder')\n"
            "from grader import isolation, config\n"
            "print(isolation.take_slot(config.load())[2][0], flush=True)\n"
            "time.sleep(3)\n")
    procs = [subprocess.Popen([PYTHON, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True) for _ in range(3)]
    uids = [int(p.stdout.readline()) for p in procs]
    for p in procs:
        p.wait(timeout=30)
    assert len(set(uids)) == 3 and min(uids) >= 64000, uids
    assert all(abs(a - b) >= 8 for a in uids for b in uids if a != b), "the slots' uid blocks overlap"



@pytest.mark.skipif(os.name != "posix" or os.geteuid() != 0, reason="worker slots exist only when root")
def test_a_released_slot_is_taken_again_last(private_slots):
    """The least recently taken slot comes first: a finished grading's uids are not the next grader's.
    (Private slots whose lock files all exist with the same time.)"""
    from grader import isolation
    config, folder = private_slots(4)
    folder.mkdir()
    for n in range(4):
        (folder / str(n)).touch()
        os.utime(folder / str(n), ns=(10**18, 10**18))
    taken = []
    for _ in range(3):
        slot = isolation.take_slot(config)
        taken.append(slot.number)
        slot.release()
    assert taken == [0, 1, 2]


@linux_only
def test_audit_hook_names_lookups_and_the_students_program_starts(tmp_path):
    """A host name lookup is refused (kind network) before glibc's resolver opens its socket, which the seccomp
    filter would kill with SIGSYS; a program started by the student's own code is refused (kind process), one
    started by other code (a library's) is not; each refusal's line carries its kind, the PermissionError no path."""
    student = tmp_path / "student"
    student.mkdir()
    (student / "mod.py").write_text("import os, subprocess\n\ndef run():\n    subprocess.run(['true'])\n\n"
                                    "def shell():\n    os.system('true')\n")
    events = tmp_path / "events"
    proc = run_confined(f"""
        import os, socket, subprocess, sys
        fd = os.open({str(events)!r}, os.O_WRONLY | os.O_CREAT)
        assert sandbox.block_network() is None
        guard = sandbox.install_guard(fd, {str(student)!r}, [], [{str(student)!r}])
        sys.path.insert(0, {str(student)!r})
        import mod
        for attempt in (lambda: socket.getaddrinfo("example.org", 80), lambda: socket.gethostbyname("example.org"),
                        mod.run, mod.shell):
            try:
                attempt()
                print("ALLOWED")
            except PermissionError as exc:
                print("refused", str(exc).replace(" ", "_"))
        print("kinds", *guard.kinds)
        print("library", subprocess.run(["true"]).returncode)
    """)
    assert proc.returncode == 0, (proc.returncode, proc.stderr)
    lines = proc.stdout.splitlines()
    assert lines == ["refused the_grader_does_not_allow_network_connections"] * 2 + \
        ["refused the_grader_does_not_allow_starting_other_programs"] * 2 + ["kinds network process", "library 0"], lines
    log = events.read_text()
    assert "refused: socket.getaddrinfo ('example.org',) [network]" in log and "[process]" in log, log
    assert "mod.py:4" in log and "mod.py:7" in log, log
