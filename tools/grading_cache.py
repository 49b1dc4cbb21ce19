"""A cache of gradings (and of the reference scripts' runs), keyed by everything a result can depend on.

    from grading_cache import cached_grading, cached, script_key
    result, hit = cached_grading(folder, args, run, autograder=AUTOGRADER)
    result, hit = cached(script_key([script, utils], extra=[...]), run, keep)

The self-tests and tools/variants.py grade the same bytes again and again: the reference's
baselines, every mutant and alternative, the red team's honest twins.  A grading is reused
when its key is unchanged.  The key is a SHA-256 over:

- the grader's code (every file of grader/), its pytest.ini, the shipped utils.py and the
  config file in force (the --config one, else config.toml), and the --set overrides;
- the test files of the graded files only (``test_<stem>*.py``, grader.discovery.stem_of),
  plus every file under tests/ that belongs to no graded file (fixtures, helpers): editing
  one file's private tests regrades only that file's variants;
- every file of the submission folder (path and bytes);
- the grader's arguments (without the submission and results paths);
- the NNAG_* and FMNIST_DIR environment (but the cache's own variables), the Python that
  runs the grader, the numpy and torch versions, and the size and time of the Fashion-MNIST
  files the grader may read.

Only a grading that ended normally is kept: the grader exited 0 and wrote its final
results.json (``extra_data.partial`` false, no internal grader error).  A script's run (the
reference scripts' own training, tests/test_solution_accuracy.py) is keyed by the bytes of the
files it reads, its arguments and environment, the Python, the library versions and the data
files, and kept when the caller says it succeeded.  Entries are written
atomically under build/grading-cache/ (never committed).  NNAG_GRADING_CACHE=off turns the
cache off; NNAG_GRADING_CACHE_DIR moves it.  When NNAG_CACHE_STATS names a file, each lookup
appends "hit" or "miss" to it (make test's summary line counts them).
"""
import hashlib
import importlib.metadata
import json
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AUTOGRADER = os.path.join(ROOT, "autograder")
sys.path.insert(0, AUTOGRADER)
from grader.discovery import stem_of  # noqa: E402
FORMAT = "nnag-grading-cache-1"          # change when what an entry holds changes
# where utils.load_mnist_f looks (its ./data/ relative to the repository and to the grader's folder)
DATA_DIRS = ("/usr/share/datasets/fashion-mnist", os.path.join(ROOT, "data"), os.path.join(AUTOGRADER, "data"))
# the cache's own settings: never part of a key (the statistics file is new in every make test)
OWN_VARIABLES = ("NNAG_GRADING_CACHE", "NNAG_GRADING_CACHE_DIR", "NNAG_CACHE_STATS")


def _read(path):
    with open(path, "rb") as fh:
        return fh.read()


def cache_dir():
    return os.environ.get("NNAG_GRADING_CACHE_DIR") or os.path.join(ROOT, "build", "grading-cache")


def enabled():
    return os.environ.get("NNAG_GRADING_CACHE", "on").lower() not in ("off", "0", "no", "false")


def _files(top):
    """Every regular file under ``top`` as (path relative to ``top``, absolute path), sorted; caches and
    compiled files left out."""
    found = []
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__" and not d.startswith("."))
        for name in filenames:
            if not name.endswith((".pyc", ".pyo")):
                path = os.path.join(dirpath, name)
                found.append((os.path.relpath(path, top), path))
    return sorted(found)


def _stem_of_test(name):
    """The graded file whose grading runs test module ``name``, by the grader's own rule
    (grader.discovery: ``test_numpy_ann_private.py`` -> ``numpy_ann``); None for any other file."""
    return stem_of(name) if name.startswith("test_") and name.endswith(".py") else None


def _option(args, name, default=None):
    """The value of ``name`` in an argument list (``--x v`` or ``--x=v``; the last one wins)."""
    value = default
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith(name + "="):
            value = arg.split("=", 1)[1]
    return value


def _versions():
    found = {}
    for dist in ("numpy", "torch", "torchvision"):
        try:
            found[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            found[dist] = None
    return found


def _environment_parts(add, python, data_dirs):
    """What a run depends on beyond its files: the Python, the library versions, the data files."""
    add("python", json.dumps([python or sys.executable, sys.version]))
    add("versions", json.dumps(_versions(), sort_keys=True))
    for d in data_dirs:
        if d and os.path.isdir(d):
            for rel, path in _files(d):
                st = os.stat(path)
                add(f"data/{d}/{rel}", f"{st.st_size} {st.st_mtime_ns}")


def _hasher():
    h = hashlib.sha256()

    def add(label, data):
        data = data if isinstance(data, bytes) else str(data).encode()
        h.update(f"{label}\0{len(data)}\0".encode())
        h.update(data)
    add("format", FORMAT)
    return h, add


def script_key(paths, extra=(), python=None):
    """The key of running a script that reads ``paths`` (their bytes), with ``extra`` (its arguments and
    environment, as strings), the Python, the library versions and the Fashion-MNIST files."""
    h, add = _hasher()
    for path in paths:
        add(f"file/{os.path.basename(path)}", _read(path))
    add("extra", json.dumps(list(extra)))
    _environment_parts(add, python, [os.environ.get("FMNIST_DIR"), *DATA_DIRS])
    return h.hexdigest()


def grading_key(folder, args, autograder=AUTOGRADER, python=None, env=None):
    """The cache key of grading ``folder`` with the grader in ``autograder`` and ``args`` (the grader's
    arguments after --submission/--results, e.g. ["--files", "numpy_ann", "--set", "x.y=1"])."""
    env = os.environ if env is None else env
    args = [str(a) for a in args]
    h, add = _hasher()
    for rel, path in _files(os.path.join(autograder, "grader")):
        add(f"grader/{rel}", _read(path))
    for name in ("pytest.ini", "run_autograder", "setup.sh"):     # in autograder/, or at the unpacked zip's root
        for path in (os.path.join(autograder, name), os.path.join(os.path.dirname(autograder), name)):
            if os.path.isfile(path):
                add(name, _read(path))
    config = _option(args, "--config") or os.path.join(autograder, "config.toml")
    add("config", _read(config if os.path.isabs(config) else os.path.join(autograder, config)))
    for utils in (os.path.join(os.path.dirname(autograder), "handout", "utils.py"),
                  os.path.join(os.path.dirname(autograder), "utils.py")):
        if os.path.isfile(utils):
            add("utils", _read(utils))
            break
    tests = os.path.join(autograder, "tests")
    all_files = _files(tests)
    stems_with_tests = {_stem_of_test(os.path.basename(rel)) for rel, _ in all_files} - {None}
    graded = set(_option(args, "--files", ",".join(sorted(stems_with_tests))).split(","))
    for rel, path in all_files:
        stem = _stem_of_test(os.path.basename(rel))
        if stem is None or stem in graded or stem not in stems_with_tests:
            add(f"tests/{rel}", _read(path))
    for rel, path in _files(folder):
        add(f"submission/{rel}", _read(path))
    add("args", json.dumps(args))
    add("env", json.dumps(sorted((k, v) for k, v in env.items()
                                 if (k.startswith("NNAG_") or k == "FMNIST_DIR") and k not in OWN_VARIABLES)))
    _environment_parts(add, python, [_option(args, "--data-dir"), env.get("FMNIST_DIR"), *DATA_DIRS])
    return h.hexdigest()


def _path(key):
    return os.path.join(cache_dir(), key[:2], key + ".json")


def _count(event):
    stats = os.environ.get("NNAG_CACHE_STATS")
    if stats:
        try:
            fd = os.open(stats, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, f"{event}\n".encode())
            finally:
                os.close(fd)
        except OSError:
            pass


def lookup(key):
    """The cached results.json of ``key``, or None."""
    try:
        with open(_path(key), encoding="utf-8") as fh:
            entry = json.load(fh)
    except (OSError, ValueError):
        return None
    return entry.get("result") if entry.get("format") == FORMAT and entry.get("key") == key else None


def keepable(result, returncode, stdout=""):
    """Whether a grading ended normally enough to be reused."""
    return (returncode == 0 and isinstance(result, dict) and isinstance(result.get("extra_data"), dict)
            and result["extra_data"].get("partial") is False and "INTERNAL GRADER ERROR" not in (stdout or ""))


def store(key, result):
    """Write the entry atomically (a temporary file in the same folder, then a rename)."""
    path = _path(key)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"format": FORMAT, "key": key, "result": result}, fh)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def cached(key, run, keep):
    """``run()``'s result (JSON data), or the one stored under ``key``; a result is stored when ``keep(result)``.
    Returns (result, hit)."""
    if not enabled():
        return run(), False
    result = lookup(key)
    if result is not None:
        _count("hit")
        return result, True
    _count("miss")
    result = run()
    if keep(result):
        store(key, result)
    return result, False


def cached_grading(folder, args, run, autograder=AUTOGRADER, python=None, env=None):
    """results.json of grading ``folder`` with ``args``: from the cache when the key is known, else from
    ``run()``, which grades and returns (results dict or None, return code, stdout); a normal ending is
    stored.  Returns (result, hit)."""
    if not enabled():
        return run()[0], False
    key = grading_key(folder, args, autograder=autograder, python=python, env=env)
    ended_normally = []

    def graded():
        result, returncode, stdout = run()
        ended_normally.append(keepable(result, returncode, stdout))
        return result
    return cached(key, graded, lambda result: ended_normally[0])
