"""The grading cache (tools/grading_cache.py): a grading is reused only while nothing it depends on changed."""
import json
import os
import shutil
import sys

import pytest

from conftest import ROOT, SOLUTION

sys.path.insert(0, os.path.join(ROOT, "tools"))
import grading_cache  # noqa: E402
from grade_folder import grade_folder  # noqa: E402


@pytest.fixture
def tree(tmp_path):
    """A copy of the grader (autograder/ and the shipped utils.py) and of the reference submission."""
    ag = tmp_path / "repo" / "autograder"
    shutil.copytree(os.path.join(ROOT, "autograder"), ag, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "repo" / "handout").mkdir()
    shutil.copy(os.path.join(ROOT, "handout", "utils.py"), tmp_path / "repo" / "handout" / "utils.py")
    sub = tmp_path / "sub"
    sub.mkdir()
    for name in ("numpy_ann.py", "pytorch_cnn.py"):
        shutil.copy(os.path.join(SOLUTION, name), sub / name)
    return ag, sub


def keys(ag, sub, *extra, env=None):
    env = {"PATH": "/usr/bin"} if env is None else env
    return {stem: grading_cache.grading_key(str(sub), ["--files", stem, *extra], autograder=str(ag), env=env)
            for stem in ("numpy_ann", "pytorch_cnn")}


def edit(path, old, new):
    text = path.read_text()
    assert text.count(old) >= 1, (path, old)
    path.write_text(text.replace(old, new, 1))


def test_the_key_changes_with_everything_a_grading_depends_on_and_nothing_else(tree, monkeypatch):
    ag, sub = tree
    base = keys(ag, sub)
    assert base == keys(ag, sub) and base["numpy_ann"] != base["pytorch_cnn"]

    def changed():
        now = keys(ag, sub)
        return {stem for stem in now if now[stem] != base[stem]}

    # a file that no grading reads: nothing changes
    (ag / "contract.toml").write_text("# edited\n")
    (ag / "README.md").write_text("edited\n")
    assert changed() == set()
    # one file's private tests: only that file's gradings
    (ag / "tests" / "private" / "test_pytorch_cnn_private.py").open("a").write("\n# one more test\n")
    assert changed() == {"pytorch_cnn"}
    base = keys(ag, sub)
    # a further test module of one file (the grader runs every test_<stem>*.py for it): only that file's
    (ag / "tests" / "private" / "test_pytorch_cnn_extra.py").write_text("def test_more():\n    pass\n")
    assert changed() == {"pytorch_cnn"}
    base = keys(ag, sub)
    # a seeded grader bug (a comparison turned round in checks.py): every grading
    edit(ag / "grader" / "checks.py", " > ", " < ")
    assert changed() == {"numpy_ann", "pytorch_cnn"}
    base = keys(ag, sub)
    # shared test fixtures, the config, the shipped utils.py
    (ag / "tests" / "public" / "fixtures" / "expected.npz").open("ab").write(b"\0")
    assert changed() == {"numpy_ann", "pytorch_cnn"}
    base = keys(ag, sub)
    (ag / "config.toml").open("a").write("\n")
    assert changed() == {"numpy_ann", "pytorch_cnn"}
    base = keys(ag, sub)
    (ag.parent / "handout" / "utils.py").open("a").write("\n")
    assert changed() == {"numpy_ann", "pytorch_cnn"}
    base = keys(ag, sub)
    # the submission's bytes, a new file in it
    edit(sub / "numpy_ann.py", "np.maximum", "np.maximum ")
    assert changed() == {"numpy_ann", "pytorch_cnn"}
    base = keys(ag, sub)
    (sub / "notes.txt").write_text("x")
    assert changed() == {"numpy_ann", "pytorch_cnn"}
    base = keys(ag, sub)
    # the arguments, the grader's environment, the library versions
    assert keys(ag, sub, "--set", "budget.numpy_ann.epochs=1") != base
    assert keys(ag, sub, env={"NNAG_WORKER_THREADS": "1"}) != base
    assert keys(ag, sub, env={"PATH": "/bin", "HOME": "/x"}) == base           # other variables do not matter
    assert keys(ag, sub, env={"NNAG_CACHE_STATS": "/tmp/stats-1", "NNAG_GRADING_CACHE_DIR": "/x",
                              "NNAG_GRADING_CACHE": "on"}) == base                # nor the cache's own
    monkeypatch.setattr(grading_cache, "_versions", lambda: {"numpy": "0.0", "torch": "0.0"})
    assert changed() == {"numpy_ann", "pytorch_cnn"}


def test_a_grading_is_reused_while_its_key_holds_and_only_a_normal_ending_is_kept(tree, tmp_path, monkeypatch):
    _, sub = tree
    monkeypatch.setenv("NNAG_GRADING_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("NNAG_CACHE_STATS", str(tmp_path / "stats"))
    runs = []

    def run():
        runs.append(1)
        result, proc = grade_folder(sub, tmp_path / f"r{len(runs)}.json", "--files", "numpy_ann", "-k", "relu")
        return result, proc.returncode, proc.stdout

    args = ["--files", "numpy_ann", "-k", "relu"]
    first, hit1 = grading_cache.cached_grading(str(sub), args, run)
    second, hit2 = grading_cache.cached_grading(str(sub), args, run)
    assert (hit1, hit2, len(runs)) == (False, True, 1) and second == first
    assert first["score"] > 0 and first["extra_data"]["partial"] is False
    edit(sub / "numpy_ann.py", "np.maximum(z, 0)", "np.maximum(z, 0.0)")         # other bytes: graded again
    third, hit3 = grading_cache.cached_grading(str(sub), args, run)
    assert (hit3, len(runs)) == (False, 2) and third["score"] == first["score"]
    assert (tmp_path / "stats").read_text().split() == ["miss", "hit", "miss"]

    # a grading that did not end normally is never kept
    partial = dict(first, extra_data=dict(first["extra_data"], partial=True))
    for outcome in ((partial, 0, ""), (first, 1, ""), (first, 0, "INTERNAL GRADER ERROR\n..."), (None, 0, "")):
        (sub / "numpy_ann.py").open("a").write("\n")
        for _ in range(2):
            assert grading_cache.cached_grading(str(sub), args, lambda: outcome) == (outcome[0], False)
    # off: never read, never written
    monkeypatch.setenv("NNAG_GRADING_CACHE", "off")
    assert grading_cache.cached_grading(str(sub), args, lambda: (partial, 0, "")) == (partial, False)
    entries = [f for d in (tmp_path / "cache").iterdir() for f in d.iterdir()]
    assert len(entries) == 2 and all(json.loads(f.read_text())["result"]["extra_data"]["partial"] is False
                                     for f in entries)


def test_a_script_run_is_keyed_by_its_files_arguments_and_environment(tmp_path):
    script, utils = tmp_path / "s.py", tmp_path / "utils.py"
    script.write_text("print('PASS')\n")
    utils.write_text("X = 1\n")
    base = grading_cache.script_key([script, utils], extra=["s.py", "OMP_NUM_THREADS=1"])
    assert grading_cache.script_key([script, utils], extra=["s.py", "OMP_NUM_THREADS=1"]) == base
    assert grading_cache.script_key([script, utils], extra=["s.py", "OMP_NUM_THREADS=2"]) != base
    utils.write_text("X = 2\n")
    assert grading_cache.script_key([script, utils], extra=["s.py", "OMP_NUM_THREADS=1"]) != base
