"""Grade one submission: python -m grader.run --submission DIR --results FILE.

Writes a valid results.json (score 0) before any student code runs, then the
real one atomically at the end, and prints a score table.  Exits 0 whenever a
results file was written.
"""
import argparse
import functools
import importlib.util
import os
import signal
import sys
import tempfile
import time

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    __package__ = "grader"

from . import VERSION, isolation, resources, results  # noqa: E402
from . import config as config_mod  # noqa: E402
from .submission import GRADED, find_files, remove_tree, suspicious_files  # noqa: E402

GRADER_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # autograder/
ROOT_DIR = os.path.dirname(GRADER_DIR)
if GRADER_DIR not in sys.path:
    sys.path.insert(0, GRADER_DIR)
TESTS_DIR = os.path.join(GRADER_DIR, "tests")
UTILS_PATH = os.path.join(ROOT_DIR, "handout", "utils.py")
if not os.path.isfile(UTILS_PATH):  # the student handout zip keeps utils.py at its root
    UTILS_PATH = os.path.join(ROOT_DIR, "utils.py")
FILE_ORDER = {stem: i + 1 for i, stem in enumerate(GRADED)}
DEBIAN_DATA = "/usr/share/datasets"        # where Debian's dataset-fashion-mnist puts the files


def load_utils():
    spec = importlib.util.spec_from_file_location("nnag_shipped_utils", UTILS_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def data_loader(data_dir):
    """Fashion-MNIST, read once and only when a test asks for it."""
    return functools.cache(lambda: load_utils().load_mnist_f(data_dir=data_dir, allow_download=False))


@functools.cache
def load_expected():
    """The public tests' stored expected values, read once."""
    import numpy as np
    with np.load(os.path.join(TESTS_DIR, "public", "fixtures", "expected.npz"), allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def protected_paths(args, workdir):
    """Paths the worker must not open or list (the audit hook; as root, file permissions do the same).

    A path holding the worker's own folders or the interpreter is left out."""
    paths = [GRADER_DIR] + [os.path.join(ROOT_DIR, d) for d in ("solution", "tests", "build", "dist", "tools")]
    paths += [os.path.abspath(args.results), os.path.abspath(args.submission)]
    paths += list(args.lock) + ["/autograder/source", "/autograder/results", "/autograder/submission",
                                "/autograder/submission_metadata.json", DEBIAN_DATA,
                                f"/proc/{os.getpid()}"]   # the grader's environment and command line
    if args.data_dir:
        paths.append(os.path.abspath(args.data_dir))
    needed = [os.path.realpath(workdir), os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix)]
    both = {form for p in paths for form in (os.path.abspath(p), os.path.realpath(p))}   # as given and resolved
    return sorted(p for p in both if not any(n == p or n.startswith(p.rstrip(os.sep) + os.sep) for n in needed))


def worker_memory(config):
    """(MB, why): config limits.memory_mb, or less where the container's memory limit leaves less.

    Asked again at each worker start, so the grader's share is what it holds then (the data
    set is loaded before the first worker starts); limits.reserve_mb covers its passing
    needs, the page cache of the libraries in use and the kernel."""
    limits = config["limits"]
    return resources.worker_memory_mb(limits["memory_mb"], resources.own_rss_mb() or 0, limits["reserve_mb"])


def instructor_report(session, upload_hits, notes):
    """A 0-point, hidden test whose output lists every limit hit and refused or telling action."""
    lines = []
    if upload_hits:
        lines.append("upload: never loaded, but shipped: " + ", ".join(upload_hits))
    for stem, events in (session.events() if session is not None else {}).items():
        lines += [f"{stem}: {e}" for e in events]
    lines += [f"check: {n}" for n in notes]
    return {"nodeid": "instructor-report", "test": "instructor_report", "file": "general", "name": results.REPORT_NAME,
            "number": "0.1", "max_score": 0.0, "visibility": "hidden", "kind": "hidden",
            "status": "failed" if lines else "passed", "score": 0.0,
            "output": "\n".join(lines) if lines else "Nothing to report."}


def number_tests(records):
    counters = {}
    for rec in records:
        if rec["number"] is None:
            major = FILE_ORDER.get(rec["file"], 9)
            counters[major] = counters.get(major, 0) + 1
            rec["number"] = f"{major}.{counters[major]}"
        if "[" in rec["test"] and "[" not in rec["name"]:
            rec["name"] += " [" + rec["test"].split("[", 1)[1]
        rec["tags"] = [rec["file"], rec["kind"]]
    return records


def score_table(result):
    """Number, score, status and the test's full name (last, so that nothing is cut), then totals per file."""
    rows = [f"{'#':>5}  {'score':>11}  {'status':<6}  test"]
    per_file = {}
    for t in result["tests"]:
        rows.append(f"{t['number']:>5}  {t['score']:>5g}/{t['max_score']:<5g}  {t['status']:<6}  {t['name']}")
        f = t["tags"][0]
        got, of = per_file.get(f, (0.0, 0.0))
        per_file[f] = (got + t["score"], of + t["max_score"])
    rows.append("")
    for f, (got, of) in per_file.items():
        rows.append(f"  {f:<14} {got:g} / {of:g}")
    total = sum(t["max_score"] for t in result["tests"])
    rows.append(f"  {'TOTAL':<14} {result['score']:g} / {total:g}")
    return "\n".join(rows)


def cleanup(workdir):
    """Remove the scratch folders; returns problems for the report and never raises."""
    try:
        return remove_tree(workdir)
    except Exception as exc:  # noqa: BLE001 - nothing in the cleanup may cost the results
        return [f"{workdir}: {type(exc).__name__}: {exc}"]


def parse_args(argv):
    p = argparse.ArgumentParser(description="Grade one submission of the neural-networks assignment.")
    p.add_argument("--submission", required=True, help="folder with the student's files (any nesting)")
    p.add_argument("--results", required=True, help="where to write results.json")
    p.add_argument("--tests", choices=("public", "hidden", "all"), default="all")
    p.add_argument("--files", default=",".join(GRADED), help="comma-separated file stems to grade")
    p.add_argument("-k", dest="keyword", default=None, help="pytest -k expression to select tests")
    p.add_argument("--config", default=None, help="config file (default autograder/config.toml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one config setting (repeatable), e.g. budget.numpy_ann.seed=3")
    p.add_argument("--data-dir", default=os.environ.get("FMNIST_DIR"), help="Fashion-MNIST folder")
    p.add_argument("--lock", nargs="*", default=[], help="folders to make root-only before grading (Gradescope)")
    p.add_argument("--quiet", action="store_true", help="do not print the score table")
    p.add_argument("--no-report", action="store_true",
                   help="leave out the instructor report (students' local runs: it is for staff)")
    p.add_argument("--no-training", action="store_true",
                   help="leave out every test marked training or trains (students debugging the math)")
    p.add_argument("--skip-training", default="", metavar="STEMS",
                   help="comma-separated file stems whose @training tests are left out (self-tests)")
    p.add_argument("--also-writable", action="append", default=[], metavar="DIR",
                   help="a folder every worker may also write (the red-team suite's canary); never for grading")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    start = time.time()
    try:
        config = config_mod.load(args.config, args.overrides)
    except config_mod.ConfigError as exc:
        print(f"grader: {exc}", file=sys.stderr)
        results.atomic_write(args.results, results.initial(None, f"The autograder is misconfigured: {exc}"))
        return 0
    results.atomic_write(args.results, results.initial(
        config, "Grading did not finish. If this message stays, the grader was stopped before the end."))
    if args.lock:
        isolation.lock_down(args.lock)
    files = [f for f in args.files.split(",") if f]
    unknown = [f for f in files if f not in GRADED]
    if unknown:
        print(f"grader: --files: unknown file(s) {unknown}; choose from {', '.join(GRADED)}", file=sys.stderr)
        return 2
    if not os.path.isdir(args.submission):
        msg = f"The submission folder {args.submission} does not exist."
        results.atomic_write(args.results, results.initial(config, msg))
        print(f"grader: {msg}", file=sys.stderr)
        return 0

    workdir = tempfile.mkdtemp(prefix="nnag-")
    os.chmod(workdir, 0o711)
    session = None
    deadline = time.monotonic() + float(config["time_limits"]["total"]) - (time.time() - start)

    def on_terminate(signum, frame):
        """Stopped from outside (e.g. a batch timeout): kill the workers, remove the scratch folder."""
        if session is not None:
            session.close()
        remove_tree(workdir)
        os._exit(128 + signum)

    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, on_terminate)
    cleanup_notes = []
    collect = None
    try:
        found, warnings = find_files(args.submission)
        data_dirs = [d for d in (args.data_dir, DEBIAN_DATA) if d]
        iso = isolation.Isolation(config, workdir, protected_paths(args, workdir), data_dirs, args.also_writable)
        notes = list(warnings) + iso.prepare(files, found, UTILS_PATH, config["size_limits"])
        load_data = data_loader(args.data_dir)
        if args.tests != "public":
            try:
                load_data()               # now, so that every worker's memory limit counts it
            except Exception:  # noqa: BLE001 - a test that needs the data reports the problem
                pass
        memory_mb, memory_why = worker_memory(config)
        problem = iso.check_interpreter()
        if problem:
            raise RuntimeError(f"the worker user cannot run {iso.python}: {problem}. Put the grader's "
                               "virtual environment where that user can read it (see DEVELOPERS.md).")

        from . import plugin, session as session_mod
        session = session_mod.Session(config, iso, found=found, deadline=deadline,
                                      memory=lambda: worker_memory(config)[0])
        extra = {"files_graded": files, "worker_threads": iso.threads,
                 "worker_threads_why": iso.threads_why, "worker_memory_why": memory_why,
                 "total_time_limit": config["time_limits"]["total"]}
        missing = [f"{stem}.py" for stem in files if f"{stem}.py" not in found]
        output_lines = [f"Autograder {VERSION}."] + [f"Note: {n}" for n in notes]
        if missing:
            output_lines.append("Not found in your submission: " + ", ".join(missing))

        def collect(final):
            """results from the records so far; before the end, only the files whose tests all ran."""
            state = plugin.STATE
            done = [r for r in state["records"].values()
                    if final or r["file"] != state.get("active_file")]
            graded = {r["file"] for r in done}
            report = instructor_report(session, suspicious_files(args.submission),
                                       state.get("instructor_notes", []) + cleanup_notes)
            records = number_tests(sorted(done, key=lambda r: (FILE_ORDER.get(r["file"], 9), r["kind"] == "hidden")))
            if not args.no_report:
                records.append(dict(report, tags=["general", "hidden"]))
            lines = list(output_lines)
            pending = [f for f in files if f not in graded]
            if not final:
                lines.append("Grading did not finish: the autograder was stopped before it graded "
                             + ", ".join(f"{f}.py" for f in pending) + ". The scores below are those of the files "
                             "graded before.")
            elif session.out_of_time:
                lines.append(session_mod.not_run_message(config["time_limits"]["total"]))
            result = results.build(records, config, time.time() - start, "\n".join(lines),
                                   leaderboard=state.get("leaderboard"),
                                   extra=dict(extra, worker_memory_mb=session.smallest_memory_mb or memory_mb,
                                              isolation=iso.describe(),
                                              internal_errors=len(state.get("internal_errors", [])),
                                              tests_left_out=state.get("left_out", 0),
                                              partial=not final, out_of_time=session.out_of_time))
            return result, report

        def checkpoint():
            results.atomic_write(args.results, collect(final=False)[0])

        plugin.STATE.clear()
        plugin.STATE.update(session=session, config=config, records={}, load_data=load_data,
                            expected=load_expected, leaderboard=[], checkpoint=checkpoint,
                            skip_training=[f for f in args.skip_training.split(",") if f],
                            no_training=args.no_training)
        test_dirs = [os.path.join(TESTS_DIR, kind) for kind in (("public", "hidden") if args.tests == "all"
                                                                else (args.tests,))]
        test_files = [os.path.join(d, f) for stem in files for d in test_dirs if os.path.isdir(d)
                      for f in sorted(os.listdir(d))
                      if f.startswith(f"test_{stem}") and f.endswith(".py")]  # grouped by file
        # quiet (the students' runner, the self-tests): no pytest progress line at all
        terminal = ["-p", "no:terminal"] if args.quiet else ["-qq", "--no-header", "--tb=no", "-rN"]
        pytest_args = ["-c", os.path.join(GRADER_DIR, "pytest.ini"), "--rootdir", GRADER_DIR, "--confcutdir",
                       GRADER_DIR, "-p", "grader.plugin", "-p", "no:cacheprovider", "-p", "no:warnings",
                       *terminal, *test_files]
        if args.keyword:
            pytest_args += ["-k", args.keyword]
        os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        import pytest
        if test_files:
            pytest.main(pytest_args)
        session.close()
        cleanup_notes += [f"cleanup: {p}" for p in cleanup(workdir)]
        result, report = collect(final=True)
        if not args.quiet and not args.no_report:
            print(f"{results.REPORT_NAME}:\n{report['output']}")
        for tb in plugin.STATE.get("internal_errors", []):
            print("INTERNAL GRADER ERROR\n" + tb)
    except Exception as exc:  # noqa: BLE001 - the results file must say what happened
        import traceback
        traceback.print_exc()
        failure = (f"The autograder failed before finishing: {exc}. "
                   "This is not your fault; please tell the instructor.")
        result = None
        if collect is not None:       # keep the scores of the files graded before the failure
            try:
                result = collect(final=False)[0]
                result["output"] += "\n" + failure
            except Exception:  # noqa: BLE001
                result = None
        if result is None or not result["tests"]:
            result = results.initial(config, failure)
            result["execution_time"] = int(time.time() - start)
    finally:
        try:
            if session is not None:
                session.close()
        except Exception:  # noqa: BLE001 - nothing may stop the final write
            import traceback
            traceback.print_exc()
        for p in cleanup(workdir):
            print(f"grader: cleanup: {p}", file=sys.stderr)
    problems = results.validate(result)
    if problems:
        print("grader: results failed validation: " + "; ".join(problems), file=sys.stderr)
    results.atomic_write(args.results, result)
    if not args.quiet:
        print(score_table(result) if result["tests"] else result["output"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
