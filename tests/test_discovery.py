"""One listing of the grader's tests (grader.discovery), and every user of it gets the same answer."""
import os
import sys

from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "autograder"))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from grader import assignment, discovery, grading  # noqa: E402
from grader import config as config_mod  # noqa: E402
import contract  # noqa: E402


def write_tests(top):
    """A small tests folder: two modules of numpy_ann, one of no graded file, and things that are no tests."""
    files = {
        "public/test_numpy_ann.py": 'def test_relu(numpy_ann):\n    """ReLU is max(z, 0).\n\n    More words."""\n'
                                    "def test_plain():\n    pass\n"
                                    "def helper():\n    pass\n"
                                    "class TestGrouped:\n    def test_method(self):\n        pass\n",
        "public/conftest.py": "def test_not_a_module():\n    pass\n",
        "public/test_notes.txt": "def test_not_python():\n    pass\n",
        "private/test_numpy_ann_private.py": 'def test_private():\n    """A private test."""\n',
        "private/test_no_graded_file.py": "def test_orphan():\n    pass\n",
    }
    for rel, text in files.items():
        os.makedirs(top / os.path.dirname(rel), exist_ok=True)
        (top / rel).write_text(text)


def test_a_module_is_a_test_file_and_a_test_a_top_level_test_function(tmp_path):
    write_tests(tmp_path)
    found = discovery.test_modules(folder=str(tmp_path))
    assert [(m.kind, m.name, m.stem, m.tests) for m in found] == [
        ("public", "test_numpy_ann.py", "numpy_ann", {"test_relu": "ReLU is max(z, 0).", "test_plain": "test_plain"}),
        ("private", "test_no_graded_file.py", None, {"test_orphan": "test_orphan"}),
        ("private", "test_numpy_ann_private.py", "numpy_ann", {"test_private": "A private test."})]
    assert found[0].path == str(tmp_path / "public" / "test_numpy_ann.py")
    assert [m.name for m in discovery.test_modules(("private",), str(tmp_path))] == \
        ["test_no_graded_file.py", "test_numpy_ann_private.py"]
    assert discovery.test_modules(("public", "private"), str(tmp_path / "public")) == []   # no such subfolders


def test_a_module_belongs_to_the_longest_stem_it_starts_with():
    assert discovery.stem_of("test_pytorch_ann_private.py", ("pytorch", "pytorch_ann")) == "pytorch_ann"
    assert discovery.stem_of("test_pytorch_cnn.py", ("pytorch", "pytorch_ann")) == "pytorch"
    assert discovery.stem_of("test_fashionmnist_extra.py") == "fashionmnist"
    assert discovery.stem_of("test_numpy.py") is None


def test_the_grader_the_weights_check_and_the_contract_all_ask_discovery(tmp_path, monkeypatch):
    """Each user's answer changes with discovery's: none lists the tests by itself."""
    write_tests(tmp_path)
    listing = discovery.test_modules
    monkeypatch.setattr(discovery, "test_modules",
                        lambda kinds=discovery.KINDS, folder=None: listing(kinds, str(tmp_path)))
    assert config_mod.test_names() == {"test_numpy_ann.py": {"test_relu", "test_plain"},
                                       "test_no_graded_file.py": {"test_orphan"},
                                       "test_numpy_ann_private.py": {"test_private"}}
    assert grading.test_files(["numpy_ann"], ("public", "private")) == [
        str(tmp_path / "public" / "test_numpy_ann.py"), str(tmp_path / "private" / "test_numpy_ann_private.py")]
    assert grading.test_files(["numpy_ann"], ("private",)) == [str(tmp_path / "private" / "test_numpy_ann_private.py")]
    assert contract.test_functions() == {"public/test_numpy_ann.py::test_relu": "ReLU is max(z, 0).",
                                         "public/test_numpy_ann.py::test_plain": "test_plain",
                                         "private/test_no_graded_file.py::test_orphan": "test_orphan",
                                         "private/test_numpy_ann_private.py::test_private": "A private test."}


def test_the_real_tests_are_listed_alike_and_each_module_is_run_for_its_file():
    modules = discovery.test_modules()
    assert len(modules) >= 8 and sum(len(m.tests) for m in modules) >= 40
    assert [m.name for m in modules if m.stem is None] == [], "a test module the grader never runs (no graded file)"
    pairs = {(m.name, t) for m in modules for t in m.tests}
    assert {(name, t) for name, tests in config_mod.test_names().items() for t in tests} == pairs
    assert {tuple(key.split("/", 1)[1].split("::")) for key in contract.test_functions()} == pairs
    assert sorted(grading.test_files(assignment.STEMS, discovery.KINDS)) == sorted(m.path for m in modules)


def test_the_old_name_hidden_is_an_error_that_names_the_new_one(tmp_path, capsys):
    """The tests not shipped to students were "hidden" and are "private" (the word collided with Gradescope's
    "hidden" visibility): the old --tests value and the old [grading] key fail, naming their new names, instead
    of meaning something."""
    from grader import record, run
    import pytest
    assert discovery.KINDS == ("public", "private")
    with pytest.raises(SystemExit) as info:
        run.parse_args(["--submission", str(tmp_path), "--results", str(tmp_path / "r.json"), "--tests", "hidden"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --tests: invalid choice: 'hidden' (choose from 'public', 'private', 'all')" in err
    assert run.parse_args(["--submission", ".", "--results", "r.json", "--tests", "private"]).tests == "private"
    (tmp_path / "config.toml").write_text('[grading]\nhidden_visibility = "visible"\n')
    with pytest.raises(config_mod.ConfigError, match="unknown setting grading.hidden_visibility; it is now "
                                                     "grading.private_visibility"):
        config_mod.check(config_mod.tomllib.loads((tmp_path / "config.toml").read_text()), "config.toml")

    class Item:
        fspath = os.path.join("/private", "var", "tests", "public", "test_numpy_ann.py")   # macOS's tmp is /private/...
    assert not record.is_private(Item)
    Item.fspath = os.path.join(str(tmp_path), "tests", "private", "test_numpy_ann_private.py")
    assert record.is_private(Item)
