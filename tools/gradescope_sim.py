"""Run the autograder zip as Gradescope does, inside one tier's limits.

    python tools/gradescope_sim.py [--tier default|1cpu|2cpu|4cpu] [--submission DIR]
                                   [--timeout S] [--memory-mb MB] [--zip dist/autograder.zip]
                                   [--slower N] [--neighbour] [--over DIR]

It unpacks the zip into a fresh AUTOGRADER_ROOT, places the submission's files
in submission/ (as Gradescope does with an upload), and runs run_autograder as
root inside a cgroup with the tier's CPU quota and memory limit (no swap); the
tier's timeout is enforced from outside by killing every process of the cgroup.
It then prints the wall time, the cgroup's own peak memory counter, the OOM
kills, the score, and whether results.json was final, partial (some files
written) or the placeholder when the run ended.  Exit status: 0 when the run
ended with final results (and, for the reference solution, full marks),
1 otherwise, 2 when the simulation itself cannot run here.

The interpreter is a venv of its own (build/sim-venv) with the CPU-only torch
wheel on this machine's disk and no torchvision, so that memory and time are
those of the build that Gradescope installs, not of the CUDA build in .venv.
A Docker engine would be the closer stand-in; where none runs (these machines),
cgroups are used directly, and the tool says which one ran.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOLUTION = os.path.join(ROOT, "solution")
CGROUP = "/sys/fs/cgroup"
# tier -> (CPUs, memory MB); Gradescope's default is 0.5 CPU / 768 MB
TIERS = {"default": (0.5, 768), "1cpu": (1.0, 1536), "2cpu": (2.0, 3072), "4cpu": (4.0, 6144)}
SIM_VENV = os.path.join(ROOT, "build", "sim-venv")
CPU_TORCH = "torch==2.13.0"     # the CPU-only wheel on this machine's disk (pip's find-links)
PLACEHOLDER = "Grading did not finish"


class SimError(Exception):
    """The simulation cannot run here; the message says why and what to do."""


# -- the interpreter ---------------------------------------------------------------------------

def sim_requirements():
    """The zip's pins without torch/torchvision (torch comes from the CPU wheel on disk)."""
    lines = []
    with open(os.path.join(ROOT, "autograder", "requirements-gradescope.txt")) as fh:
        for line in fh:
            line = line.split("#", 1)[0].strip()
            if line and not line.startswith("-") and not line.lower().startswith(("torch", "torchvision")):
                lines.append(line)
    return lines


def ensure_venv():
    """build/sim-venv from Debian's python3.11, CPU-only torch, rebuilt when the pins change."""
    wanted = "\n".join(sim_requirements() + [CPU_TORCH]) + "\n"
    stamp = os.path.join(SIM_VENV, ".pins")
    python = os.path.join(SIM_VENV, "bin", "python")
    try:
        with open(stamp) as fh:
            if fh.read() == wanted and os.access(python, os.X_OK):
                return python
    except OSError:
        pass
    base = os.environ.get("PYTHON_BASE") or "/usr/bin/python3"
    print(f"gradescope-sim: building {os.path.relpath(SIM_VENV, ROOT)} ({base}, {CPU_TORCH} CPU-only, "
          "no torchvision)", flush=True)
    shutil.rmtree(SIM_VENV, ignore_errors=True)
    subprocess.run([base, "-m", "venv", SIM_VENV], check=True)
    reqs = os.path.join(SIM_VENV, "requirements.txt")
    with open(reqs, "w") as fh:
        fh.write(wanted)
    proc = subprocess.run([os.path.join(SIM_VENV, "bin", "pip"), "install", "-q", "--disable-pip-version-check",
                           "-r", reqs], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SimError(f"installing the simulation venv failed:\n{proc.stderr[-2000:]}")
    check = subprocess.run([python, "-c", "import torch; assert '+cpu' in torch.__version__, torch.__version__"],
                           capture_output=True, text=True)
    if check.returncode != 0:
        raise SimError(f"the simulation venv's torch is not a CPU-only build: {check.stderr[-500:]}")
    subprocess.run(["chmod", "-R", "a+rX", SIM_VENV], check=True)
    with open(stamp, "w") as fh:
        fh.write(wanted)
    return python


# -- the container stand-in ----------------------------------------------------------------------

def docker_engine():
    """None when a Docker engine answers, else why not (the container mode needs one)."""
    if shutil.which("docker") is None:
        return "no docker command"
    proc = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True,
                          timeout=30)
    if proc.returncode != 0:
        return "no Docker engine runs here (`docker info` failed)"
    return None


class Cgroup:
    """A CPU quota and a memory limit without swap, on cgroup v2 or v1 (root only)."""

    def __init__(self, name, cpus, memory_mb):
        self.name = name
        v2 = os.path.exists(os.path.join(CGROUP, "cgroup.controllers"))
        if v2:
            self.version = "cgroup v2"
            self.dirs = {"cpu": os.path.join(CGROUP, name)}
            self.dirs["memory"] = self.dirs["cpu"]
        else:
            self.version = "cgroup v1"
            self.dirs = {"cpu": os.path.join(CGROUP, "cpu", name), "memory": os.path.join(CGROUP, "memory", name)}
            for kind, folder in self.dirs.items():
                if not os.path.isdir(os.path.dirname(folder)):
                    raise SimError(f"no cgroup v1 {kind} controller at {os.path.dirname(folder)}")
        try:
            for folder in set(self.dirs.values()):
                os.makedirs(folder, exist_ok=True)
            period = 100_000
            limit = memory_mb << 20
            # The quota is a ceiling; a high weight makes it also what the container gets on a busy host (the
            # tier's quota is its own on Gradescope), so that the host's other work (make test's parallel
            # processes) does not turn the simulated tier into a slower one.  NEIGHBOUR=1 still shares the host.
            if v2:
                self._write("cpu", "cpu.weight", "10000", optional=True)
                self._write("cpu", "cpu.max", f"{int(cpus * period)} {period}")
                self._write("memory", "memory.max", str(limit))
                self._write("memory", "memory.swap.max", "0", optional=True)
            else:
                self._write("cpu", "cpu.shares", "262144", optional=True)
                self._write("cpu", "cpu.cfs_period_us", str(period))
                self._write("cpu", "cpu.cfs_quota_us", str(int(cpus * period)))
                self._write("memory", "memory.limit_in_bytes", str(limit))
                self._write("memory", "memory.memsw.limit_in_bytes", str(limit), optional=True)
                self._write("memory", "memory.swappiness", "0", optional=True)
        except OSError as exc:
            self.remove()
            raise SimError(f"cannot set up the cgroup {name} ({exc}); run as root on a machine with a writable "
                           f"{CGROUP}") from None

    def _write(self, kind, name, value, optional=False):
        try:
            with open(os.path.join(self.dirs[kind], name), "w") as fh:
                fh.write(value)
        except OSError:
            if not optional:
                raise

    def _read(self, kind, name):
        return self._read_file(os.path.join(self.dirs[kind], name))

    def enter(self):
        """Move the calling process into the cgroup (used in the child before exec)."""
        for folder in set(self.dirs.values()):
            with open(os.path.join(folder, "cgroup.procs"), "w") as fh:
                fh.write(str(os.getpid()))

    def pids(self):
        found = set()
        for folder in set(self.dirs.values()):
            found |= {int(p) for p in self._read_file(os.path.join(folder, "cgroup.procs")).split()}
        return found

    @staticmethod
    def _read_file(path):
        try:
            with open(path) as fh:
                return fh.read()
        except OSError:
            return ""

    def kill_all(self):
        """SIGKILL every process in the cgroup until none is left (a fork during the sweep is caught next round)."""
        for _ in range(100):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)

    def peak_mb(self):
        text = self._read("memory", "memory.peak" if self.version == "cgroup v2" else "memory.max_usage_in_bytes")
        return int(text) / 2**20 if text.strip().isdigit() else None

    def oom_kills(self):
        text = self._read("memory", "memory.events" if self.version == "cgroup v2" else "memory.oom_control")
        for line in text.splitlines():
            if line.startswith("oom_kill "):
                return int(line.split()[1])
        return None

    def remove(self):
        for folder in set(self.dirs.values()):
            try:
                os.rmdir(folder)
            except OSError:
                pass


# -- one run ------------------------------------------------------------------------------------

def _status(pid):
    """(VmRSS KB, VmData KB, command line) of a process, or None."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            fields = dict(line.split(":", 1) for line in fh if ":" in line)
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            cmd = fh.read().replace(b"\0", b" ").decode("utf-8", "replace")
        return int(fields["VmRSS"].split()[0]), int(fields["VmData"].split()[0]), cmd
    except (OSError, KeyError, ValueError, IndexError):
        return None


class Sampler(threading.Thread):
    """Where the memory goes: peak resident memory of the grader, of the worker(s) and of the rest,
    and the worker's peak private data (what RLIMIT_DATA counts), sampled every 0.2 s."""

    def __init__(self, group):
        super().__init__(daemon=True)
        self.group = group
        self.peaks = {"grader_rss_mb": 0, "worker_rss_mb": 0, "other_rss_mb": 0, "worker_data_mb": 0}
        self.done = threading.Event()

    def run(self):
        while not self.done.wait(0.2):
            sums = {"grader_rss_mb": 0, "worker_rss_mb": 0, "other_rss_mb": 0}
            for pid in self.group.pids():
                info = _status(pid)
                if info is None:
                    continue
                rss, data, cmd = info
                role = "grader_rss_mb" if "grader.run" in cmd else "worker_rss_mb" if "worker.py" in cmd \
                    else "other_rss_mb"
                sums[role] += rss >> 10
                if role == "worker_rss_mb":
                    self.peaks["worker_data_mb"] = max(self.peaks["worker_data_mb"], data >> 10)
                    module = cmd.split()[-1] if cmd.split() else "?"
                    by_file = self.peaks.setdefault("worker_data_mb_by_file", {})
                    by_file[module] = max(by_file.get(module, 0), data >> 10)
            for key, value in sums.items():
                self.peaks[key] = max(self.peaks[key], value)


def place_submission(src, dest, over=None):
    """The upload's files as Gradescope places them (folders kept; the grader finds files at any depth);
    the files of ``over`` replace those of ``src`` (an attack in one file beside the reference's others)."""
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    if over:
        shutil.copytree(over, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"), dirs_exist_ok=True)
    meta = {"id": 1, "created_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "assignment": {"title": "simulation"},
            "users": [{"name": "Simulated Student", "email": "student@example.invalid"}]}
    with open(os.path.join(os.path.dirname(dest), "submission_metadata.json"), "w") as fh:
        json.dump(meta, fh)


def summarize(results_path):
    """(state, result or None): state is final, partial, placeholder or missing."""
    try:
        with open(results_path) as fh:
            result = json.load(fh)
    except (OSError, ValueError):
        return "missing", None
    extra = result.get("extra_data") or {}
    if not result.get("tests"):
        return ("placeholder" if PLACEHOLDER in str(result.get("output")) else "final"), result
    return ("partial" if extra.get("partial") else "final"), result


class Neighbour:
    """CPU-hungry processes beside the container (one per host core, outside its cgroup)."""

    def __init__(self, count):
        self.procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
                      for _ in range(count)]

    def stop(self):
        for proc in self.procs:
            proc.kill()
            proc.wait()


def simulate(tier, submission, timeout, memory_mb=None, zip_path=None, grader_args=(), keep=False, log=print,
             slower=1.0, neighbour=False, over=None):
    cpus, tier_mb = TIERS[tier]
    if slower <= 0:
        raise SimError(f"--slower must be above 0, not {slower:g}")
    cpus = cpus / slower
    memory_mb = memory_mb or tier_mb
    zip_path = zip_path or os.path.join(ROOT, "dist", "autograder.zip")
    if os.geteuid() != 0:
        raise SimError("run it as root: Gradescope runs run_autograder as root, and cgroups need root here")
    if not os.path.isfile(zip_path):
        raise SimError(f"{zip_path} does not exist; run `make autograder` first")
    why_not_docker = docker_engine()
    python = ensure_venv()
    base = tempfile.mkdtemp(prefix="nnag-sim-")
    os.chmod(base, 0o755)
    group = Cgroup(f"nnag-sim-{os.getpid()}", cpus, memory_mb)
    mode = f"{group.version} (no container: {why_not_docker})" if why_not_docker else group.version
    log(f"gradescope-sim: tier {tier}: {cpus:.3g} CPU quota" + (f" (a host {slower:g} times slower)" if slower != 1
                                                                   else "")
        + f", {memory_mb} MB memory without swap, {timeout} s timeout; {mode}; host {os.cpu_count()} cores"
        + (f", {os.cpu_count()} CPU-hungry neighbour process(es)" if neighbour else "")
        + f"; CPU-only torch from {os.path.relpath(python, ROOT)}")
    busy = None
    try:
        busy = Neighbour(os.cpu_count() or 1) if neighbour else None
        source = os.path.join(base, "source")
        with zipfile.ZipFile(zip_path) as zf:
            zf.extractall(source)
        for name in ("run_autograder", "setup.sh"):
            os.chmod(os.path.join(source, name), 0o755)
        place_submission(submission, os.path.join(base, "submission"), over)
        os.makedirs(os.path.join(base, "results"))
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/root",
               "AUTOGRADER_ROOT": base, "NNAG_PYTHON": python}
        out_path = os.path.join(base, "autograder-output.txt")
        start = time.monotonic()
        sampler = Sampler(group)
        sampler.start()
        with open(out_path, "wb") as out:
            proc = subprocess.Popen(["sh", os.path.join(source, "run_autograder"), *grader_args], env=env,
                                    stdout=out, stderr=subprocess.STDOUT, preexec_fn=group.enter,
                                    start_new_session=True)
            killed = False
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                killed = True
                group.kill_all()
                proc.wait()
        wall = time.monotonic() - start
        sampler.done.set()
        group.kill_all()            # anything the run left behind
        peak, ooms = group.peak_mb(), group.oom_kills()
        state, result = summarize(os.path.join(base, "results", "results.json"))
        with open(out_path, "rb") as fh:
            output = fh.read().decode("utf-8", "replace")
    finally:
        if busy is not None:
            busy.stop()
        group.kill_all()
        group.remove()
        if not keep:
            shutil.rmtree(base, ignore_errors=True)
    tests = (result or {}).get("tests") or []
    extra = (result or {}).get("extra_data") or {}
    total = sum(t["max_score"] for t in tests)
    summary = {
        "tier": tier, "cpus": round(cpus, 4), "slower": slower, "neighbour": neighbour, "memory_mb": memory_mb,
        "timeout": timeout, "mode": mode,
        "torch": "CPU-only " + CPU_TORCH.split("==")[1], "wall_seconds": round(wall, 1),
        "killed_at_timeout": killed, "peak_mb": round(peak) if peak is not None else None, "oom_kills": ooms,
        "sampled_peaks": sampler.peaks,
        "results": state, "score": (result or {}).get("score"), "max_score": total,
        "leaderboard": (result or {}).get("leaderboard"),
        "failed": [[t["name"], t["output"][:400]] for t in tests if t["status"] != "passed" and t["max_score"] > 0],
        "per_file": per_file(tests),
        "worker_threads": extra.get("worker_threads"),
        "worker_memory_mb": extra.get("worker_memory_mb"),
        "time_scale": extra.get("time_scale"), "time_per_file": extra.get("time_per_file"),
        "slowest": sorted(((t.get("extra_data") or {}).get("seconds", 0), t["name"]) for t in tests)[-5:][::-1],
        "folder": base if keep else None,
    }
    return summary, output


def per_file(tests):
    """{file stem: [score, max score]} from results.json's tests (their first tag is the file)."""
    out = {}
    for t in tests:
        if t.get("max_score"):
            stem = (t.get("tags") or ["?"])[0]
            got, of = out.get(stem, [0.0, 0.0])
            out[stem] = [got + t["score"], of + t["max_score"]]
    return out


def report(s, log=print):
    log(f"  wall time      {s['wall_seconds']:.0f} s" + ("  (killed at the timeout)" if s["killed_at_timeout"] else ""))
    log(f"  peak memory    {s['peak_mb']} MB (cgroup counter, page cache included) of {s['memory_mb']} MB")
    p = s["sampled_peaks"]
    log(f"  resident peaks grader {p['grader_rss_mb']} MB, worker {p['worker_rss_mb']} MB (private data "
        f"{p['worker_data_mb']} MB), other {p['other_rss_mb']} MB (sampled every 0.2 s)")
    if p.get("worker_data_mb_by_file"):
        log("  worker private " + ", ".join(f"{k} {v} MB" for k, v in p["worker_data_mb_by_file"].items()))
    log(f"  OOM kills      {s['oom_kills']}")
    log(f"  score          {s['score']} / {s['max_score']:g}" + (" (" + ", ".join(
        f"{stem} {got:g}/{of:g}" for stem, (got, of) in s["per_file"].items()) + ")" if s.get("per_file") else ""))
    log(f"  results.json   {s['results']}")
    log(f"  worker         {s['worker_threads']} thread(s), memory limit {s['worker_memory_mb']} MB")
    if s.get("time_per_file"):
        log(f"  time per file  (per-request limits x{s['time_scale']:g}) " + ", ".join(
            f"{stem} {d['used_s']:.0f} of {d['share_s']:.0f} s" + (f" (lost {len(d['lost_to_clock'])})"
                                                                   if d["lost_to_clock"] else "")
            for stem, d in s["time_per_file"].items()))
    for name, output in s["failed"]:
        log(f"  FAILED         {name}\n                 " + output.replace("\n", "\n                 "))
    if s["slowest"] and s["slowest"][0][0]:
        log("  slowest tests  " + "; ".join(f"{sec:.0f} s {name[:50]}" for sec, name in s["slowest"]))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tier", choices=sorted(TIERS), default="default")
    p.add_argument("--submission", default=SOLUTION, help="folder with the files to upload (default: solution/)")
    p.add_argument("--timeout", type=float, default=600, help="Gradescope's timeout in seconds (default 600)")
    p.add_argument("--memory-mb", type=int, default=None, help="memory limit instead of the tier's (headroom check)")
    p.add_argument("--zip", default=None, help="the autograder zip (default dist/autograder.zip)")
    p.add_argument("--keep", action="store_true", help="keep the AUTOGRADER_ROOT folder and print where")
    p.add_argument("--json", default=None, help="also write the summary to this file")
    p.add_argument("--show-output", action="store_true", help="print run_autograder's own output")
    p.add_argument("--slower", type=float, default=1.0, help="simulate a host N times slower: the quota / N")
    p.add_argument("--over", default=None, help="a folder whose files replace the submission's (one attacking file "
                   "beside the reference's others)")
    p.add_argument("--neighbour", action="store_true",
                   help="a CPU-hungry process per host core beside the container (a busy host)")
    p.add_argument("grader_args", nargs="*", help="passed on to run_autograder (after --)")
    args = p.parse_args(argv)
    # stopped from outside: leave through the finally blocks, which kill the run and remove the cgroup
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    submission = os.path.abspath(args.submission)
    if not os.path.isdir(submission):
        print(f"gradescope-sim: SUBMISSION={args.submission} is not a folder", file=sys.stderr)
        return 2
    try:
        summary, output = simulate(args.tier, submission, args.timeout, args.memory_mb, args.zip,
                                   args.grader_args, args.keep, slower=args.slower, neighbour=args.neighbour,
                                   over=args.over and os.path.abspath(args.over))
    except SimError as exc:
        print(f"gradescope-sim: {exc}", file=sys.stderr)
        return 2
    if args.show_output:
        print(output)
    report(summary)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json + ".tmp", "w") as fh:
            json.dump(summary, fh, indent=2)
        os.replace(args.json + ".tmp", args.json)
    if summary["folder"]:
        print(f"  kept           {summary['folder']}")
    ok = summary["results"] == "final"
    if os.path.realpath(submission) == os.path.realpath(SOLUTION) and not args.grader_args and not args.over:
        full = summary["score"] is not None and summary["max_score"] > 0 and summary["score"] == summary["max_score"]
        if not full:
            print("gradescope-sim: the reference solution did not get full marks in this tier", file=sys.stderr)
        ok = ok and full
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
