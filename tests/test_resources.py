"""The container readers (grader/resources.py) on fake cgroup trees, v1 and v2."""
import os
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "autograder"))
from grader import resources  # noqa: E402


def tree(tmp_path, files):
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return str(tmp_path)


V1_SELF = "4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n0::/\n"
V2_SELF = "0::/system.slice/docker-abc.scope\n"


def v1(tmp_path, quota="50000", period="100000", limit=str(768 << 20), oom="oom_kill_disable 0\noom_kill 2\n",
       parent_limit="9223372036854771712"):
    return tree(tmp_path, {
        "proc/self/cgroup": V1_SELF,
        "sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us": quota,
        "sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us": period,
        "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "-1",
        "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000",
        "sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": limit,
        "sys/fs/cgroup/memory/docker/abc/memory.oom_control": oom,
        "sys/fs/cgroup/memory/docker/memory.limit_in_bytes": parent_limit,
        "sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712",
    })


def v2(tmp_path, cpu_max="150000 100000", memory_max=str(1536 << 20), events="low 0\noom 1\noom_kill 3\n"):
    scope = "sys/fs/cgroup/system.slice/docker-abc.scope"
    return tree(tmp_path, {
        "proc/self/cgroup": V2_SELF,
        "sys/fs/cgroup/cgroup.controllers": "cpu memory",
        "sys/fs/cgroup/system.slice/cgroup.controllers": "cpu memory",
        f"{scope}/cgroup.controllers": "cpu memory",
        f"{scope}/cpu.max": cpu_max,
        f"{scope}/memory.max": memory_max,
        f"{scope}/memory.events": events,
        "sys/fs/cgroup/system.slice/cpu.max": "max 100000",
        "sys/fs/cgroup/system.slice/memory.max": "max",
    })


def test_v1_quota_memory_and_oom_kills(tmp_path):
    root = v1(tmp_path)
    assert resources.cpu_quota(root) == 0.5
    assert resources.memory_limit_mb(root) == 768
    assert resources.oom_kills(root) == 2


def test_v1_without_limits(tmp_path):
    root = v1(tmp_path, quota="-1", limit="9223372036854771712", oom="oom_kill_disable 0\n")
    assert resources.cpu_quota(root) is None
    assert resources.memory_limit_mb(root) is None
    assert resources.oom_kills(root) is None


def test_v1_limit_on_a_parent_counts(tmp_path):
    root = v1(tmp_path, limit="9223372036854771712", parent_limit=str(1024 << 20))
    assert resources.memory_limit_mb(root) == 1024


def test_v2_quota_memory_and_oom_kills(tmp_path):
    root = v2(tmp_path)
    assert resources.cpu_quota(root) == 1.5
    assert resources.memory_limit_mb(root) == 1536
    assert resources.oom_kills(root) == 3


def test_v2_unlimited(tmp_path):
    root = v2(tmp_path, cpu_max="max 100000", memory_max="max", events="oom_kill 0\n")
    assert resources.cpu_quota(root) is None
    assert resources.memory_limit_mb(root) is None
    assert resources.oom_kills(root) == 0


def test_namespaced_container_reads_its_own_mount(tmp_path):
    """Inside a container with its own cgroup namespace /proc/self/cgroup says "/"."""
    root = tree(tmp_path, {"proc/self/cgroup": "0::/\n", "sys/fs/cgroup/cgroup.controllers": "cpu memory",
                           "sys/fs/cgroup/cpu.max": "50000 100000", "sys/fs/cgroup/memory.max": str(768 << 20)})
    assert resources.cpu_quota(root) == 0.5
    assert resources.memory_limit_mb(root) == 768


def test_nothing_readable_means_no_limit(tmp_path):
    assert resources.cpu_quota(str(tmp_path)) is None
    assert resources.memory_limit_mb(str(tmp_path)) is None
    assert resources.oom_kills(str(tmp_path)) is None


@pytest.mark.parametrize("quota,cpus,expected", [("50000", 16, 1), ("100000", 16, 1), ("150000", 16, 2),
                                                 ("400000", 16, 4), ("400000", 2, 2), ("-1", 3, 3)])
def test_threads_are_ceil_of_the_quota_within_the_affinity(tmp_path, monkeypatch, quota, cpus, expected):
    root = v1(tmp_path, quota=quota)
    monkeypatch.setattr(resources, "affinity_cpus", lambda: cpus)
    threads, why = resources.worker_threads(0, root)
    assert threads == expected, why


def test_configured_threads_win(tmp_path, monkeypatch):
    monkeypatch.setattr(resources, "affinity_cpus", lambda: 16)
    assert resources.worker_threads(3, v1(tmp_path))[0] == 3


def test_worker_memory_is_what_the_container_leaves(tmp_path):
    root = v1(tmp_path)                                   # 768 MB container
    mb, why = resources.worker_memory_mb(4096, grader_mb=200, reserve_mb=96, root=root)
    assert mb == 768 - 200 - 96 and "container limit 768 MB" in why
    assert resources.worker_memory_mb(300, 200, 96, root)[0] == 300          # config is smaller: config
    assert resources.worker_memory_mb(4096, 200, 96, str(tmp_path / "none"))[0] == 4096   # no container limit


def test_own_rss_is_measured():
    assert 5 < resources.own_rss_mb() < 4096
