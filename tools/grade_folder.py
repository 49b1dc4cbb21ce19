"""Grade one folder with the autograder, in a fresh process: the helper every tool and self-test uses.

    from grade_folder import grade_folder, command
    result, proc = grade_folder(folder, results_path, "--files", "numpy_ann", threads=1)

``command`` is the grader's command line for callers that watch the process themselves
(grade-all's timeouts, the benchmark's memory sampling).
"""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AUTOGRADER = os.path.join(ROOT, "autograder")


class GradeFolderError(RuntimeError):
    pass


def command(folder, results, *args, python=None, quiet=True):
    """The command line that grades ``folder`` into ``results``; run it with cwd=AUTOGRADER."""
    return [python or sys.executable, "-m", "grader.run", "--submission", str(folder), "--results", str(results),
            *(["--quiet"] if quiet else []), *map(str, args)]


def environment(threads=None, env=None):
    """The environment for the grader: ``threads`` caps the worker's torch / BLAS threads (1 when several
    graders share the machine)."""
    env = dict(os.environ if env is None else env)
    if threads:
        env["NNAG_WORKER_THREADS"] = str(threads)
    return env


def grade_folder(folder, results, *args, python=None, threads=None, env=None, timeout=1800, check=True,
                 quiet=True):
    """Grade ``folder``; returns (results.json as a dict, the CompletedProcess).  With ``check``, a grader that
    exits non-zero or leaves no readable results raises GradeFolderError with the end of its stderr."""
    proc = subprocess.run(command(folder, results, *args, python=python, quiet=quiet), cwd=AUTOGRADER,
                          capture_output=True, text=True, env=environment(threads, env), timeout=timeout)
    try:
        with open(results, encoding="utf-8") as fh:
            result = json.load(fh)
    except (OSError, ValueError) as exc:
        if check:
            raise GradeFolderError(f"grading {folder} left no readable {results} ({exc}): "
                                   f"{proc.stderr[-2000:]}") from None
        result = None
    if check and proc.returncode:
        raise GradeFolderError(f"grading {folder} exited {proc.returncode}: {proc.stderr[-2000:]}")
    return result, proc
