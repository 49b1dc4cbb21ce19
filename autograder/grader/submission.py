"""Find the expected files anywhere in an upload and copy them into scratch folders.

Only the assignment's upload names (assignment.py) are copied (case-insensitive match, any folder
depth).  Symbolic links are ignored.  Nothing else from the upload is ever
placed where Python could load it.
"""
import hashlib
import os
import shutil
import stat

from . import assignment
from .config import size_limit

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def find_files(upload):
    """Return ({lower-case name: path}, [warnings]) for allowlisted names in ``upload``."""
    candidates = {}
    for dirpath, dirnames, filenames in os.walk(upload, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))
                             and d not in ("__MACOSX", "__pycache__"))
        for name in filenames:
            path = os.path.join(dirpath, name)
            if name.lower() in assignment.UPLOADS and os.path.isfile(path) and not os.path.islink(path):
                candidates.setdefault(name.lower(), []).append(path)
    found, warnings = {}, []
    for name, paths in sorted(candidates.items()):
        paths.sort(key=lambda p: (os.path.relpath(p, upload).count(os.sep), os.path.relpath(p, upload)))
        found[name] = paths[0]
        if len(paths) > 1:
            others = ", ".join(os.path.relpath(p, upload) for p in paths[1:])
            warnings.append(f"{len(paths)} files named {name}: graded {os.path.relpath(paths[0], upload)}, "
                            f"ignored {others}")
        elif os.path.basename(paths[0]) != name or os.path.dirname(paths[0]) != os.path.normpath(upload):
            warnings.append(f"found {name} as {os.path.relpath(paths[0], upload)}")
    return found, warnings


# Names that would change how Python or pytest starts if they were ever loaded.
# None of them is copied (only the assignment's upload names are); they are listed for the
# instructor because shipping them is a sign of an attempt.
SUSPICIOUS = frozenset({"conftest.py", "pytest.ini", "pyproject.toml", "setup.cfg", "tox.ini", "setup.py",
                        "sitecustomize.py", "usercustomize.py", "numpy.py", "torch.py", "pytest.py", "_pytest.py",
                        "results.json", "grader.py", "run_autograder", "setup.sh", "config.toml"})


def grader_modules():
    """The grader package's module file names (an upload shipping one is suspicious)."""
    return frozenset(name for name in os.listdir(PACKAGE_DIR) if name.endswith(".py"))


def suspicious_files(upload):
    """Relative paths of uploaded files whose names suggest an attempt to change the grader."""
    hits, modules = [], grader_modules()
    for dirpath, dirnames, filenames in os.walk(upload, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            low = name.lower()
            if low in SUSPICIOUS or low in modules or (low.endswith(".pth") and low not in assignment.UPLOADS):
                hits.append(os.path.relpath(os.path.join(dirpath, name), upload))
    return hits


# open flags for a file a student made (uploaded, or written by their code): never follow a link in the
# last component, never wait (a FIFO or a device opens at once), never become a controlling terminal
UNTRUSTED_OPEN = (os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
                  | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0))


def open_untrusted(path):
    """(descriptor, fstat result) of ``path``, opened read-only with UNTRUSTED_OPEN relative to a
    descriptor of its folder.  Raises OSError (errno ELOOP: a symbolic link).  The caller checks
    ``stat.S_ISREG`` and the size before reading, and closes the descriptor."""
    folder, name = os.path.split(path)
    if os.open not in os.supports_dir_fd:
        fd = os.open(path, UNTRUSTED_OPEN)
    else:
        dir_fd = os.open(folder or ".", os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
        try:
            fd = os.open(name, UNTRUSTED_OPEN, dir_fd=dir_fd)
        finally:
            os.close(dir_fd)
    try:
        return fd, os.fstat(fd)
    except OSError:
        os.close(fd)
        raise


def read_capped(path, limit):
    """The bytes of a regular file of at most ``limit`` bytes, or None for anything else (larger, a link,
    a FIFO, missing...).  Opened with open_untrusted; never reads more than ``limit`` + 1 bytes."""
    try:
        fd, info = open_untrusted(path)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fin:
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            return None
        data = fin.read(limit + 1)
    return data if len(data) <= limit else None       # longer: it grew after fstat


def copy_capped(src, dest, limit):
    """Copy a regular file of at most ``limit`` bytes (read_capped); returns False (and copies nothing)
    for anything else."""
    data = read_capped(src, limit)
    if data is None:
        return False
    with open(dest, "wb") as fout:
        fout.write(data)
    return True


def uploads_digest(found, stem, size_limits):
    """SHA-256 of the bytes of ``stem``'s uploads, as make_scratch would copy them (absent or refused ones
    named as such)."""
    digest = hashlib.sha256(stem.encode())
    for name in assignment.file_of(stem).uploads:
        data = read_capped(found[name], size_limit(size_limits, name)) if name in found else None
        digest.update(f"\0{name}\0{'absent' if data is None else len(data)}\0".encode())
        digest.update(data or b"")
    return digest.digest()


def content_seed(found, stem, size_limits, config_hash, purpose, digest=None):
    """A seed for the random choices a test of ``stem`` makes (noise, sampling): a function of the config
    hash, ``purpose`` and the bytes of the file's uploads only (``digest``: their uploads_digest, when the
    caller has it), so a regrade of the same files draws the same numbers and a changed file draws afresh."""
    digest = digest or uploads_digest(found, stem, size_limits)
    seed = hashlib.sha256(digest + f"\0{config_hash}\0{purpose}".encode()).digest()
    return int.from_bytes(seed[:8], "big")


def make_scratch(base, stem, found, utils_path, size_limits, owner=None):
    """Create ``base/stem`` with the file's allowlisted files and the shipped utils.py (``utils_path``; None:
    the assignment has no helper module).

    Returns (scratch path, [notes]).  ``owner`` is (uid, gid) to hand the folder to.
    """
    scratch = os.path.join(base, stem)
    os.makedirs(scratch)
    notes = []
    if utils_path is not None:
        shutil.copy(utils_path, os.path.join(scratch, assignment.UTILS))
    for name in assignment.file_of(stem).uploads:
        if name in found:
            limit = size_limit(size_limits, name)
            if not copy_capped(found[name], os.path.join(scratch, name), limit):
                notes.append(f"{name} is larger than the limit of {limit} bytes and was not used")
    if owner is not None:
        for dirpath, _, filenames in os.walk(scratch):
            os.chown(dirpath, *owner)
            for name in filenames:
                os.chown(os.path.join(dirpath, name), *owner)
    os.chmod(scratch, 0o700)
    return scratch, notes



HELD_FOLDERS = 64      # directory descriptors remove_tree keeps open at most


def tree_usage(paths, max_entries, max_bytes):
    """What the trees ``paths`` hold: (entries, bytes, over), counted only until a bound is passed.

    ``over`` is None, "entries" (more than ``max_entries`` files, folders, links...), "bytes" (more than
    ``max_bytes`` of disk blocks: a sparse file counts what it fills) or "depth" (folders nested more than
    HELD_FOLDERS deep).  Like remove_tree: iterative, one folder descriptor per level, each opened relative
    to its parent's without following a link (O_NOFOLLOW, O_NONBLOCK); nothing but folders is opened (files
    are only lstat'ed), so no FIFO, lease or /proc link can block it; it stops at the first bound passed, so
    it looks at no more than max_entries + 1 entries whatever the tree holds (a million entries, 30,000
    levels).  A folder that is missing or cannot be opened counts as empty."""
    counted = [0, 0]
    for path in paths:
        over = _count_tree(path, counted, max_entries, max_bytes)
        if over:
            return counted[0], counted[1], over
    return counted[0], counted[1], None


def _open_folder(name, dir_fd=None):
    """(descriptor, scandir iterator) of the folder ``name``, never through a link; None if it cannot be."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    except OSError:
        return None
    try:
        return fd, os.scandir(fd)
    except OSError:
        os.close(fd)
        return None


def _count_tree(path, counted, max_entries, max_bytes):
    """tree_usage for one tree: adds to ``counted`` ([entries, bytes]); the bound passed, or None."""
    top = _open_folder(path)
    stack = [top] if top else []
    try:
        while stack:
            fd, items = stack[-1]
            try:
                item = next(items, None)
            except OSError:               # the folder went away while it was read: what was counted stands
                item = None
            if item is None:
                items.close()
                os.close(fd)
                stack.pop()
                continue
            try:
                info = item.stat(follow_symlinks=False)
            except OSError:               # removed since it was listed
                continue
            counted[0] += 1
            counted[1] += info.st_blocks * 512
            if counted[0] > max_entries or counted[1] > max_bytes:
                return "entries" if counted[0] > max_entries else "bytes"
            if stat.S_ISDIR(info.st_mode):
                if len(stack) > HELD_FOLDERS:        # the top folder and HELD_FOLDERS levels are open
                    return "depth"
                child = _open_folder(item.name, fd)
                if child:
                    stack.append(child)
    finally:
        for fd, items in stack:
            items.close()
            os.close(fd)
    return None


def remove_tree(path):
    """Remove ``path`` and everything under it; returns [problems] (at most 20) instead of raising.

    Iterative and relative to directory descriptors, so no depth (recursion,
    PATH_MAX) stops it; at most HELD_FOLDERS descriptors are open at once (a folder
    deeper than that is moved up to ``path`` first, so a tree deeper than the open-file
    limit goes too); symbolic links are removed, never followed; a folder whose
    permissions its owner (the student's code) took away is given them back."""
    problems = []
    path = os.path.abspath(path)
    if not os.path.lexists(path):
        return problems
    if os.path.islink(path) or not os.path.isdir(path):
        try:
            os.unlink(path)
        except OSError as exc:
            _add_problem(problems, f"{path}: {exc}")
        return problems
    try:
        top = os.open(os.path.dirname(path), os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        return [f"{path}: {exc}"]
    stack = [[top, os.path.basename(path), None, set()]]   # [parent fd, name, own fd, names that failed]
    try:
        _remove_folders(stack, problems)
    finally:
        for _parent, _name, fd, _failed in stack:
            if fd is not None:
                os.close(fd)
        os.close(top)
    return problems


def _add_problem(problems, text):
    """remove_tree keeps at most 20 problems."""
    if len(problems) < 20:
        problems.append(text)


def _remove_folders(stack, problems):
    """remove_tree's loop: empties and removes the folder on top of ``stack`` until none is left.  Each
    entry is [parent fd, name, own fd or None, names that failed]; the caller closes what is left open."""
    moved = 0
    while stack:
        entry = stack[-1]
        parent, name, _, failed = entry
        if entry[2] is None and not _open_entry(entry, problems):
            stack.pop()
            if stack:
                stack[-1][3].add(name)
            continue
        fd = entry[2]
        child = _unlink_files(fd, name, failed, problems)
        if child is not None and len(stack) >= HELD_FOLDERS and stack[0][2] is not None:
            moved += 1          # too deep to hold a descriptor per level: move the rest up, remove it later
            if _move_up(fd, child, stack[0][2], f".nnag-deep-{moved}"):
                continue
        if child is not None:
            stack.append([fd, child, None, set()])
            continue
        os.close(fd)
        stack.pop()
        try:
            os.rmdir(name, dir_fd=parent)
        except OSError as exc:
            _add_problem(problems, f"{name}: {exc}")
            if stack:
                stack[-1][3].add(name)


def _open_entry(entry, problems):
    """Give the folder of a _remove_folders ``entry`` its owner's permissions back and open it, never
    through a link, storing its descriptor in the entry; False (and a problem noted) if it cannot be opened."""
    parent, name = entry[0], entry[1]
    try:
        os.chmod(name, 0o700, dir_fd=parent, follow_symlinks=False)
    except (OSError, NotImplementedError):
        pass
    try:
        entry[2] = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
    except OSError as exc:
        _add_problem(problems, f"{name}: {exc}")
        return False
    return True


def _unlink_files(fd, name, failed, problems):
    """Unlink the entries of the open folder ``fd`` (``name``) that are not folders, up to its first
    subfolder (a link is unlinked, never followed), skipping the names in ``failed`` and adding those that
    fail; returns the first subfolder's name, or None when none was met."""
    child = None
    try:
        with os.scandir(fd) as items:
            for item in items:
                if item.name in failed:
                    continue
                if item.is_dir(follow_symlinks=False):
                    child = item.name
                    break
                try:
                    os.unlink(item.name, dir_fd=fd)
                except OSError as exc:
                    failed.add(item.name)
                    _add_problem(problems, f"{item.name}: {exc}")
    except OSError as exc:
        _add_problem(problems, f"{name}: {exc}")
    return child


def _move_up(fd, child, top_fd, new_name):
    """Rename the folder ``child`` of ``fd`` to ``new_name`` in the top folder ``top_fd``; False if it fails
    (then remove_tree goes down as usual)."""
    try:
        os.rename(child, new_name, src_dir_fd=fd, dst_dir_fd=top_fd)
        return True
    except OSError:
        return False
