"""What the container gives the grader: CPU quota, memory limit, OOM kills.

Gradescope runs the autograder in a Docker container with a CPU *quota* on a
many-core host and a memory limit.  ``os.cpu_count()`` reports the host's
cores, not the quota, and nothing in Python reports the memory limit, so both
are read from the cgroup files:

* cgroup v2: ``cpu.max`` ("<quota> <period>" or "max <period>"), ``memory.max``
  ("<bytes>" or "max"), ``memory.events`` (``oom_kill <n>``);
* cgroup v1: ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (quota -1 = none),
  ``memory.limit_in_bytes`` (a huge number = none), ``memory.oom_control``
  (``oom_kill <n>``).

The process's own cgroup comes from ``/proc/self/cgroup``; every ancestor up to
the mount's root is read as well and the smallest limit wins (a container's
limit may sit on a parent of the process's own cgroup; inside a container with
its own cgroup namespace the path is "/" and the mount's root is the container).
Every function takes ``root`` (default "/") so that tests can point it at a fake
tree.  Nothing here raises on a missing or unreadable file: no limit is found.
"""
import math
import os

UNLIMITED_BYTES = 1 << 60          # v1 writes "no limit" as about 2**63


def _read(path):
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            return fh.read().strip()
    except OSError:
        return None


def _cgroups(root):
    """[(controllers, path)] from <root>/proc/self/cgroup; v2's line has controllers [""]."""
    text = _read(os.path.join(root, "proc/self/cgroup")) or ""
    out = []
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            out.append((parts[1].split(","), parts[2] or "/"))
    return out


def _folders(root, controller):
    """Candidate cgroup folders for ``controller`` ("" = v2), own cgroup first, then each ancestor."""
    base = os.path.join(root, "sys/fs/cgroup")
    mounts = [os.path.join(base, "unified"), base] if controller == "" else \
        [os.path.join(base, name) for name in (controller, f"{controller},cpuacct", f"cpuacct,{controller}")
         if os.path.isdir(os.path.join(base, name))]
    seen, out = set(), []
    for controllers, path in _cgroups(root):
        if (controller == "" and controllers != [""]) or (controller and controller not in controllers):
            continue
        for mount in mounts:
            parts = [p for p in path.split("/") if p]
            for depth in range(len(parts), -1, -1):
                folder = os.path.join(mount, *parts[:depth])
                if folder not in seen and os.path.isdir(folder):
                    seen.add(folder)
                    out.append(folder)
    if not out:   # no /proc/self/cgroup line: a container's namespaced mount is its own cgroup
        out = [m for m in mounts if os.path.isdir(m)]
    return out


def _v2_folders(root):
    return [f for f in _folders(root, "") if os.path.exists(os.path.join(f, "cgroup.controllers"))]


def cpu_quota(root="/"):
    """CPUs the quota allows (for example 0.5), or None when no quota is set."""
    found = []
    for folder in _v2_folders(root):
        text = _read(os.path.join(folder, "cpu.max"))
        if text:
            quota, _, period = text.partition(" ")
            if quota != "max" and period:
                try:
                    found.append(int(quota) / int(period))
                except (ValueError, ZeroDivisionError):
                    pass
    for folder in _folders(root, "cpu"):
        quota, period = _read(os.path.join(folder, "cpu.cfs_quota_us")), _read(os.path.join(folder,
                                                                                           "cpu.cfs_period_us"))
        try:
            if quota is not None and period and int(quota) > 0:
                found.append(int(quota) / int(period))
        except (ValueError, ZeroDivisionError):
            pass
    return min(found) if found else None


def affinity_cpus():
    """CPUs this process may run on (the affinity mask), or os.cpu_count()."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def worker_threads(configured=0, root="/"):
    """(threads, why): ``configured`` when positive, else ceil(quota) capped by the affinity, at least 1."""
    if configured and int(configured) > 0:
        return int(configured), "set in config (grading.worker_threads)"
    cpus = affinity_cpus()
    quota = cpu_quota(root)
    if quota is None:
        return max(1, cpus), f"no CPU quota; {cpus} CPUs in the affinity mask"
    return max(1, min(cpus, math.ceil(quota - 1e-9))), f"CPU quota {quota:g} CPUs, {cpus} CPUs in the affinity mask"


def memory_limit_mb(root="/"):
    """The container's memory limit in MB (the smallest on the path), or None when unlimited."""
    found = []
    for folder in _v2_folders(root):
        text = _read(os.path.join(folder, "memory.max"))
        if text and text != "max" and text.isdigit():
            found.append(int(text))
    for folder in _folders(root, "memory"):
        text = _read(os.path.join(folder, "memory.limit_in_bytes"))
        if text and text.isdigit() and int(text) < UNLIMITED_BYTES:
            found.append(int(text))
    return min(found) >> 20 if found else None


def oom_kills(root="/"):
    """OOM kills counted by the memory cgroup(s) on this process's path, or None where no counter is readable."""
    total, seen = 0, False
    for folder in _v2_folders(root):
        for line in (_read(os.path.join(folder, "memory.events")) or "").splitlines():
            if line.startswith("oom_kill "):
                total, seen = max(total, int(line.split()[1])), True
    for folder in _folders(root, "memory"):
        for line in (_read(os.path.join(folder, "memory.oom_control")) or "").splitlines():
            if line.startswith("oom_kill "):
                total, seen = max(total, int(line.split()[1])), True
    return total if seen else None


def own_rss_mb():
    """This process's resident memory in MB (Linux), or None."""
    for line in (_read("/proc/self/status") or "").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) >> 10
    return None


def worker_memory_mb(configured_mb, grader_mb, reserve_mb, root="/"):
    """(MB, why): the worker's memory limit, the smaller of config and what the container leaves.

    ``grader_mb``: the grader's own share, measured; ``reserve_mb``: kept back for the
    page cache, the kernel and the short-lived processes around the worker."""
    container = memory_limit_mb(root)
    if container is None:
        return int(configured_mb), "config limits.memory_mb (no container memory limit found)"
    left = container - int(grader_mb) - int(reserve_mb)
    if left < int(configured_mb):
        return max(64, left), (f"container limit {container} MB less the grader's {int(grader_mb)} MB "
                               f"and a reserve of {int(reserve_mb)} MB")
    return int(configured_mb), f"config limits.memory_mb (the container's {container} MB leaves more)"
