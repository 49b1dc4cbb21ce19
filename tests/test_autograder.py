"""End-to-end tests of the autograder: reference, handout, zips, broken files."""
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile

import pytest

from conftest import HANDOUT, PYTHON, ROOT, SOLUTION, can_simulate_gradescope

sys.path.insert(0, os.path.join(ROOT, "autograder"))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from grader import results as results_mod  # noqa: E402
from grader.assignment import STEMS as GRADED  # noqa: E402
from grade_folder import grade_folder  # noqa: E402
import contract  # noqa: E402


def grade(submission, results, *extra, config=None):
    result, _ = grade_folder(submission, results, *extra, *(["--config", config] if config else []), python=PYTHON,
                             timeout=900)
    assert results_mod.validate(result) == [], results_mod.validate(result)
    return result


REPORT = results_mod.REPORT_NAME


def graded_tests(result):
    """The tests that carry points (the instructor's 0-point report left out)."""
    return [t for t in result["tests"] if t["name"] != REPORT]


def by_file(result):
    scores = {}
    for t in result["tests"]:
        got, total = scores.get(t["tags"][0], (0.0, 0.0))
        scores[t["tags"][0]] = (got + t["score"], total + t["max_score"])
    return scores


def copy_reference(dest):
    dest.mkdir(exist_ok=True)
    for name in os.listdir(SOLUTION):
        if name.endswith((".py", ".png", ".pth")) and name != "utils.py":
            shutil.copy(os.path.join(SOLUTION, name), dest / name)
    return dest


def test_reference_gets_full_marks_through_make_grade(tmp_path):
    """make grade grades the repository's reference with every test and gives full marks.  Where the Gradescope
    simulation runs (test_gradescope_sim grades the reference with every training, from the zip, and checks its
    full marks and leaderboard), the training tests are left out here (make grade's ARGS): this test then proves
    the make target, its paths and its table, and the reference's training is not paid for twice."""
    out = tmp_path / "results.json"
    skip = [f"ARGS=--skip-training {','.join(GRADED)}"] if can_simulate_gradescope() else []
    proc = subprocess.run(["make", "-s", "grade", "SUBMISSION=solution", f"RESULTS={out}", *skip], cwd=ROOT,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert results_mod.validate(result) == []
    kinds = {tuple(t["tags"][:2]) for t in graded_tests(result)}
    assert kinds == {(stem, kind) for stem in GRADED for kind in ("public", "private")}     # the zip has every test
    assert [t["name"] for t in result["tests"] if t["status"] != "passed"] == []
    assert result["score"] == sum(t["max_score"] for t in result["tests"]) > 0
    if not skip:
        assert result["leaderboard"][0]["name"] == "Accuracy" and result["leaderboard"][0]["value"] >= 0.9
    else:
        assert result["extra_data"]["tests_left_out"] > 0
    assert "TOTAL" in proc.stdout
    # each test carries its stable id, the one the tools use (tools/contract.py), not only its docstring name
    ids = [t["extra_data"]["test_id"] for t in graded_tests(result)]
    known = contract.test_functions()
    assert len(set(ids)) == len(ids) and all(re.sub(r"\[.*\]$", "", i) in known for i in ids), ids
    assert all(contract.test_of_result(t["name"], known) == re.sub(r"\[.*\]$", "", t["extra_data"]["test_id"])
               for t in graded_tests(result))


def test_untouched_handout_scores_zero_on_every_test(tmp_path):
    result = grade(HANDOUT, tmp_path / "r.json")
    assert len(graded_tests(result)) > 40
    assert all(t["score"] == 0 and t["status"] == "failed" for t in graded_tests(result))
    report = [t for t in result["tests"] if t["name"] == REPORT]
    assert report[0]["output"].split("\n\n")[0] == "Nothing to report." and report[0]["visibility"] == "hidden"
    assert report[0]["status"] == "passed" and report[0]["extra_data"]["problems"] == []
    assert result["score"] == 0
    assert "Traceback" not in json.dumps(result)


def test_results_carry_version_config_hash_and_visibility(tmp_path):
    result = grade(SOLUTION, tmp_path / "r.json", "--files", "numpy_ann", "-k", "relu")
    assert result["extra_data"]["grader_version"] and len(result["extra_data"]["config_hash"]) == 16
    kinds = {t["tags"][1]: t["visibility"] for t in graded_tests(result)}
    assert kinds == {"public": "visible", "private": "after_published"}
    assert len({t["number"] for t in result["tests"]}) == len(result["tests"])


@pytest.mark.parametrize("kind", ["autograder", "handout"])
def test_zip_contents_match_golden_list(kind, built_zip):
    out = built_zip(kind)
    names = sorted(zipfile.ZipFile(out).namelist())
    with open(os.path.join(ROOT, "tests", "golden", f"{kind}_zip.txt")) as fh:
        assert names == fh.read().split()
    # nothing of the second assignment (tests/second_assignment/, a self-test's fixture): no name, no file's bytes
    second = os.path.join(ROOT, "tests", "second_assignment")
    fixture = {}
    for dirpath, _, filenames in os.walk(second):
        for filename in filenames:
            with open(os.path.join(dirpath, filename), "rb") as fh:
                fixture[fh.read()] = os.path.relpath(os.path.join(dirpath, filename), ROOT)
    stems = {os.path.splitext(f)[0] for f in os.listdir(os.path.join(second, "solution")) if f.endswith(".py")}
    with zipfile.ZipFile(out) as zf:
        shipped = [fixture[zf.read(n)] for n in names if zf.getinfo(n).file_size < 1 << 20 and zf.read(n) in fixture]
    assert stems and shipped == [] and not [n for n in names if "second_assignment" in n
                                            or any(stem in n.lower() for stem in stems)]
    if kind == "handout":
        assert not [n for n in names if "private" in n or "hidden" in n or "refmath" in n or n.startswith("solution")]
        for n in ("numpy_ann.py", "pytorch_ann.py", "pytorch_cnn.py", "fashionmnist.py"):
            with open(os.path.join(HANDOUT, n), "rb") as fh:
                assert zipfile.ZipFile(out).read(n) == fh.read()
    else:
        assert zipfile.ZipFile(out).getinfo("run_autograder").external_attr >> 16 & 0o111


def test_reference_gets_full_marks_from_the_unpacked_zip(tmp_path, built_zip):
    """run_autograder from the unpacked zip, as Gradescope calls it, gives the reference full marks.  Where the
    Gradescope simulation runs (test_gradescope_sim grades the reference from the unpacked zip with every
    training, inside the default tier's limits), the training tests are left out here: this test then checks
    what the zip holds and how it starts, and the training is not paid for twice."""
    zip_path = built_zip("autograder")
    root = tmp_path / "ag"
    os.makedirs(root / "source")
    os.chmod(tmp_path, 0o755)
    os.chmod(root, 0o755)
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(root / "source")
    copy_reference(root / "submission")
    (root / "submission" / "ignored.txt").write_text("not graded")
    env = dict(os.environ, AUTOGRADER_ROOT=str(root), NNAG_PYTHON=PYTHON)
    skip = ["--skip-training", ",".join(GRADED)] if can_simulate_gradescope() else []
    proc = subprocess.run(["sh", str(root / "source" / "run_autograder"), *skip], env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((root / "results" / "results.json").read_text())
    assert results_mod.validate(result) == []
    assert result["score"] == sum(t["max_score"] for t in result["tests"]) > 0, \
        [t["output"] for t in result["tests"] if t["status"] != "passed"]
    kinds = {tuple(t["tags"][:2]) for t in graded_tests(result)}
    assert kinds == {(stem, kind) for stem in GRADED for kind in ("public", "private")}     # the zip has every test


BROKEN = {
    "numpy_ann.py": "def oops(:\n",
    "pytorch_ann.py": "import not_a_module_anywhere\n",
    "fashionmnist.py": "import torch\n\ndef build_model():\n    return torch.nn.Linear(784, 10)\n",
}


def test_broken_files_fail_clearly_and_the_rest_is_graded(tmp_path):
    sub = copy_reference(tmp_path / "sub")
    for name, text in BROKEN.items():
        (sub / name).write_text(text)
    (sub / "pytorch_cnn.py").rename(sub / "Nested_PyTorch_CNN_folder_placeholder")
    nested = sub / "deep" / "er"
    nested.mkdir(parents=True)
    shutil.copy(os.path.join(SOLUTION, "pytorch_cnn.py"), nested / "PyTorch_CNN.PY")
    result = grade(sub, tmp_path / "r.json", "--tests", "public")
    scores = by_file(result)
    assert scores["numpy_ann"][0] == 0 and scores["pytorch_ann"][0] == 0
    assert scores["pytorch_cnn"][0] == scores["pytorch_cnn"][1] > 0      # found nested, odd case
    outputs = {}
    for t in result["tests"]:
        outputs[t["tags"][0]] = outputs.get(t["tags"][0], "") + t["output"] + "\n"
    assert "importing numpy_ann.py failed: SyntaxError" in outputs["numpy_ann"]
    assert "ModuleNotFoundError" in outputs["pytorch_ann"] and "not_a_module_anywhere" in outputs["pytorch_ann"]
    assert "has no attribute 'predict'" in outputs["fashionmnist"]
    assert "found pytorch_cnn.py as deep/er/PyTorch_CNN.PY" in result["output"]


def test_hanging_import_is_detected_once(tmp_path):
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "numpy_ann.py").write_text("import time\nwhile True:\n    time.sleep(1)\n")
    config = tmp_path / "config.toml"
    text = open(os.path.join(ROOT, "autograder", "config.toml")).read().replace("import = 120", "import = 3")
    config.write_text(text)
    result = grade(sub, tmp_path / "r.json", "--files", "numpy_ann", config=config)
    assert result["execution_time"] < 30      # one timeout, not one per test
    assert all("time limit of 3 s" in t["output"] for t in result["tests"])


def test_crash_in_a_method_costs_only_that_test(tmp_path):
    sub = tmp_path / "sub"
    sub.mkdir()
    text = open(os.path.join(SOLUTION, "numpy_ann.py")).read().replace(
        "        out = (np.asarray(z) > 0).astype(np.float64)\n",
        "        import os, signal\n        os.kill(os.getpid(), signal.SIGKILL)\n")
    (sub / "numpy_ann.py").write_text(text)
    result = grade(sub, tmp_path / "r.json", "--files", "numpy_ann", "--tests", "public")
    failed = {t["name"]: t["output"] for t in graded_tests(result) if t["status"] == "failed"}
    # _relu_grad kills the worker; only the tests that reach it fail, and each says why
    assert any("relu_grad" in name for name in failed) and len(failed) <= 4
    assert all("killed by signal SIGKILL" in out for out in failed.values())
    passed = [t["name"] for t in result["tests"] if t["status"] == "passed"]
    assert any("_softmax" in n for n in passed) and any("_forward" in n for n in passed)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() != 0, reason="privilege drop happens only as root")
def test_worker_runs_unprivileged_and_cannot_read_grader_files(tmp_path):
    probe = (
        "import os\n"
        "facts = {'uid': os.getuid()}\n"
        "for key, path in (('private', %r), ('results', %r)):\n"
        "    try:\n"
        "        open(path, 'a' if key == 'results' else 'r').close(); facts[key] = 'OPEN'\n"
        "    except OSError:\n"
        "        facts[key] = 'denied'\n"
        "raise RuntimeError(f'probe {facts}')\n"
    ) % (os.path.join(ROOT, "autograder", "tests", "private", "test_numpy_ann_private.py"),
         str(tmp_path / "out" / "results.json"))
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "numpy_ann.py").write_text(probe)
    os.makedirs(tmp_path / "out")
    os.chmod(tmp_path, 0o755)
    private_dir = os.path.join(ROOT, "autograder", "tests", "private")
    mode = os.stat(private_dir).st_mode
    os.chmod(private_dir, 0o700)   # as in the Gradescope layout, where the grader locks its source
    try:
        result = grade(sub, tmp_path / "out" / "results.json", "--files", "numpy_ann", "--tests", "public")
    finally:
        os.chmod(private_dir, mode & 0o7777)
    output = result["tests"][0]["output"]
    assert "probe" in output and "'uid': 0" not in output
    assert "'private': 'denied'" in output and "'results': 'denied'" in output



def run_public(folder, *args):
    """run_public_tests.py in an unpacked handout folder: (exit code, stdout, public_results.json)."""
    proc = subprocess.run([PYTHON, "run_public_tests.py", *args], cwd=folder, capture_output=True, text=True,
                          timeout=600)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr[-2000:]
    result = json.loads((folder / "public_results.json").read_text())
    assert results_mod.validate(result) == [], results_mod.validate(result)
    return proc.returncode, proc.stdout, result


SUMMARY = re.compile(r"^(\d+) passed(?:, (\d+) failed)?(?:, (\d+) not run \(--no-training\))? \u2014 "
                     r"([\d.]+)/([\d.]+) points; details in public_results.json$", re.M)


def test_students_run_the_public_tests_from_the_handout_zip(tmp_path, built_zip):
    """The reference passes quietly with exit 0; the stubs fail with exit 1; no instructor report locally."""
    zip_path = built_zip("handout")
    os.chmod(tmp_path, 0o755)
    runs = {}
    for kind in ("stubs", "solved"):
        folder = tmp_path / kind
        with zipfile.ZipFile(zip_path) as zf:
            zf.extractall(folder)
        if kind == "solved":
            copy_reference(folder)
        runs[kind] = run_public(folder)
    code, out, result = runs["solved"]
    assert code == 0, out
    assert [t["name"] for t in result["tests"] if t["name"] == REPORT] == [] and "Instructor report" not in out
    assert {t["tags"][1] for t in result["tests"]} == {"public"}
    total = sum(t["max_score"] for t in result["tests"])
    assert result["score"] == total > 0
    assert SUMMARY.findall(out) == [(str(len(result["tests"])), "", "", f"{total:g}", f"{total:g}")], out
    assert "FAILED" not in out and "PASSED" not in out          # a passing run prints only its summary

    code, out, result = runs["stubs"]
    assert code == 1 and result["score"] == 0
    failed = [t for t in result["tests"] if t["status"] == "failed"]
    assert len(failed) == len(result["tests"]) and "Instructor report" not in out
    assert all(f"FAILED {t['number']} {t['name']} (0/{t['max_score']:g})" in out for t in failed)
    assert SUMMARY.search(out).group(1, 2) == ("0", str(len(failed)))


def test_public_runner_names_a_wrong_function_with_its_mismatch_and_hint(tmp_path, built_zip):
    """One deliberately wrong function: its test's full name, expected against got, the hint, exit 1;
    -k and a file name select, -v shows the passing tests, --no-training leaves the training tests out."""
    folder = tmp_path / "h"
    with zipfile.ZipFile(built_zip("handout")) as zf:
        zf.extractall(folder)
    copy_reference(folder)
    os.chmod(tmp_path, 0o755)
    source = (folder / "numpy_ann.py").read_text()
    right = "out = (np.asarray(z) > 0).astype(np.float64)"
    assert source.count(right) == 1
    (folder / "numpy_ann.py").write_text(source.replace(right, right.replace("> 0", ">= 0")))

    code, out, result = run_public(folder)
    wrong = [t for t in result["tests"] if t["status"] == "failed"]
    assert code == 1 and [t["name"] for t in wrong] == [
        "NumpyANN._relu_grad is 0 where z <= 0 (including exactly 0) and 1 elsewhere"], out
    assert f"FAILED {wrong[0]['number']} {wrong[0]['name']} (0/1)" in out
    assert "expected 0, got 1" in out and "Hint: the gradient at exactly 0 is 0" in out
    total = sum(t["max_score"] for t in result["tests"])
    assert SUMMARY.findall(out) == [(str(len(result["tests"]) - 1), "1", "", f"{total - 1:g}", f"{total:g}")], out

    code, out, result = run_public(folder, "numpy_ann.py", "-k", "relu and not grad")
    assert code == 0 and [t["name"] for t in result["tests"]] == ["NumpyANN._relu on negatives, zeros and positives"], out

    code, out, result = run_public(folder, "numpy_ann", "-v", "--no-training")
    names = [t["name"] for t in result["tests"]]
    assert code == 1 and all(n.startswith("NumpyANN") for n in names)
    assert "NumpyANN.train: one _backward per mini-batch, last batch partial" not in names
    assert out.count("PASSED ") == len(names) - 1 and result["extra_data"]["tests_left_out"] == 1
    assert SUMMARY.search(out).group(3) == "1"


def test_public_runner_says_once_when_the_run_is_not_sandboxed():
    """Where the worker user or seccomp does not exist (Windows, macOS, Linux without root): one line."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("runner", os.path.join(ROOT, "tools", "run_public_tests.py"))
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)
    args = runner.parse_args(["-k", "x"])
    confined = {"worker_uids": {"numpy_ann": 64001}, "seccomp": "network filter"}
    for isolation, says in ((confined, False), (dict(confined, worker_uids="none: the grader is not root"), True),
                            (dict(confined, seccomp="off: no seccomp on this system"), True), ({}, True)):
        result = {"output": "Autograder 1.0.0.", "extra_data": {"isolation": isolation},
                  "tests": [{"number": "1.1", "name": "t", "status": "passed", "score": 1.0, "max_score": 1.0,
                             "output": ""}]}
        text, code = runner.report(result, args, 0)
        assert code == 0 and text.count("not sandboxed") == int(says), text
        assert len(text.splitlines()) == 1 + int(says)


def test_a_regrade_of_the_same_files_gives_the_same_numbers_and_a_changed_file_new_noise(tmp_path):
    """The fashionmnist accuracy test's noise is drawn from the uploads and the config
    (submission.content_seed): two gradings of the same files agree to the last prediction, and a file
    changed by one comment draws other noise (the per-class counts move; the verdict does not)."""
    sub = copy_reference(tmp_path / "sub")
    args = ("--files", "fashionmnist", "--tests", "private", "-k", "test_accuracy_threshold")

    def counts(name):
        result = grade(sub, tmp_path / f"{name}.json", *args)
        test = [t for t in result["tests"] if t["tags"][0] == "fashionmnist" and "accuracy" in t["name"]]
        assert len(test) == 1 and test[0]["score"] == test[0]["max_score"], test
        return test[0]["extra_data"]["class_correct"]
    first, second = counts("first"), counts("second")
    assert first == second
    with open(sub / "fashionmnist.py", "a", encoding="utf-8") as fh:
        fh.write("\n# a comment changes the bytes, not the model\n")
    assert counts("changed") != first
