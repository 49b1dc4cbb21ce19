"""Landlock (Linux 5.13+): file-system, TCP and IPC rules the kernel enforces on the worker.

Used by the worker on itself (worker.Confinement.op_setup), before any student code runs and
while it has a single thread: a ruleset restricts the calling thread and every
process or thread it starts later, and can never be lifted.

Why ctypes on the three system calls rather than a package from PyPI: the module
must run inside the worker with nothing but the standard library (it is copied
next to worker.py, and the worker's interpreter is the grader's, or Debian's
with only numpy/torch installed); the ABI is three calls and four structures,
all fixed by the kernel's uapi header, and the two PyPI packages would add a
dependency to the zip for about eighty lines.

``restrict(read, write, files_rw)`` keeps, for the rest of the process's life:
- read and execute access beneath each path of ``read``;
- full access beneath each folder of ``write`` (the worker's own scratch);
- read and write access to each file of ``files_rw`` (/dev/null);
- nothing else on the file system; no TCP bind or connect (ABI 4); no signals to
  and no abstract Unix sockets of processes outside this sandbox (ABI 6).
It returns the ABI version that was applied, or raises ``LandlockUnavailable`` saying why.
"""
import ctypes
import os
import platform
import struct
from types import MappingProxyType

# system call numbers (the same on every architecture that uses the generic table, and on x86-64)
SYSCALLS = MappingProxyType({"x86_64": (444, 445, 446), "aarch64": (444, 445, 446), "riscv64": (444, 445, 446)})
CREATE_RULESET_VERSION = 1
RULE_PATH_BENEATH = 1
O_PATH = getattr(os, "O_PATH", 0o10000000)

# file-system access rights, by the ABI that introduced them
FS_EXECUTE, FS_WRITE_FILE, FS_READ_FILE, FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
FS_ABI1 = (1 << 13) - 1            # EXECUTE .. MAKE_SYM
FS_REFER, FS_TRUNCATE, FS_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1
READ_ONLY = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR
HIGHEST_KNOWN = 7                  # rights of later ABIs are not handled (so they stay allowed)


class LandlockUnavailable(Exception):
    """Landlock cannot be used here (old kernel, disabled at boot, not Linux, ...)."""


def fs_rights(abi):
    rights = FS_ABI1
    if abi >= 2:
        rights |= FS_REFER
    if abi >= 3:
        rights |= FS_TRUNCATE
    if abi >= 5:
        rights |= FS_IOCTL_DEV
    return rights


def _libc():
    if platform.system() != "Linux" or platform.machine() not in SYSCALLS:
        raise LandlockUnavailable(f"no Landlock on {platform.system()} {platform.machine()}")
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError as exc:
        raise LandlockUnavailable(f"libc not found ({exc})") from None
    libc.syscall.restype = ctypes.c_long
    return libc


def abi_version():
    """The kernel's Landlock ABI version; raises LandlockUnavailable."""
    libc = _libc()
    create = SYSCALLS[platform.machine()][0]
    version = libc.syscall(ctypes.c_long(create), None, ctypes.c_size_t(0), ctypes.c_uint32(CREATE_RULESET_VERSION))
    if version < 0:
        errno = ctypes.get_errno()
        why = {38: "the kernel has no Landlock (before Linux 5.13)",
               95: "Landlock is disabled on this kernel (boot option lsm=)",
               1: "Landlock's system calls are refused here (a container's seccomp profile?)"}.get(
                   errno, f"errno {errno}")
        raise LandlockUnavailable(why)
    return int(version)


def restrict(read, write, files_rw=()):
    """Apply the rules to this thread and its future children; returns the ABI used."""
    libc = _libc()
    create, add_rule, restrict_self = SYSCALLS[platform.machine()]
    abi = min(abi_version(), HIGHEST_KNOWN)
    handled_fs = fs_rights(abi)
    handled_net = NET_BIND_TCP | NET_CONNECT_TCP if abi >= 4 else 0
    scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if abi >= 6 else 0
    attr = struct.pack("=QQQ", handled_fs, handled_net, scoped)
    size = 8 if abi < 4 else (16 if abi < 6 else 24)        # older kernels refuse a larger struct
    buf = ctypes.create_string_buffer(attr[:size], size)
    ruleset = libc.syscall(ctypes.c_long(create), buf, ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        raise LandlockUnavailable(f"landlock_create_ruleset failed: errno {ctypes.get_errno()}")
    try:
        file_only = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | (FS_TRUNCATE | FS_IOCTL_DEV) & handled_fs
        for paths, rights in ((read, READ_ONLY), (write, handled_fs), (files_rw, file_only)):
            for path in paths:
                _add_path(libc, add_rule, ruleset, path, rights, file_only)
        if libc.prctl(38, 1, 0, 0, 0) != 0:                  # PR_SET_NO_NEW_PRIVS, needed without CAP_SYS_ADMIN
            raise LandlockUnavailable(f"prctl(PR_SET_NO_NEW_PRIVS) failed: errno {ctypes.get_errno()}")
        if libc.syscall(ctypes.c_long(restrict_self), ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
            raise LandlockUnavailable(f"landlock_restrict_self failed: errno {ctypes.get_errno()}")
    finally:
        os.close(ruleset)
    return abi


def _add_path(libc, add_rule, ruleset, path, rights, file_only):
    try:
        fd = os.open(path, O_PATH | os.O_CLOEXEC)
    except OSError:
        return                        # a path that does not exist here grants nothing
    try:
        import stat
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            rights &= file_only       # the kernel refuses directory rights on a file
        rule = struct.pack("=Qi", rights, fd)                # struct landlock_path_beneath_attr (packed)
        buf = ctypes.create_string_buffer(rule, len(rule))
        if libc.syscall(ctypes.c_long(add_rule), ctypes.c_int(ruleset), ctypes.c_int(RULE_PATH_BENEATH), buf,
                        ctypes.c_uint32(0)) != 0:
            raise LandlockUnavailable(f"landlock_add_rule({path}) failed: errno {ctypes.get_errno()}")
    finally:
        os.close(fd)
