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
        "hidden/test_numpy_ann_hidden.py": 'def test_hidden():\n    """A hidden test."""\n',
        "hidden/test_no_graded_file.py": "def test_orphan():\n    pass\n",
    }
    for rel, text in files.items():
        os.makedirs(top / os.path.dirname(rel), exist_ok=True)
        (top / rel).write_text(text)


def test_a_module_is_a_test_file_and_a_test_a_top_level_test_function(tmp_path):
    write_tests(tmp_path)
    found = discovery.test_modules(folder=str(tmp_path))
    assert [(m.kind, m.name, m.stem, m.tests) for m in found] == [
        ("public", "test_numpy_ann.py", "numpy_ann", {"test_relu": "ReLU is max(z, 0).", "test_plain": "test_plain"}),
        ("hidden", "test_no_graded_file.py", None, {"test_orphan": "test_orphan"}),
        ("hidden", "test_numpy_ann_hidden.py", "numpy_ann", {"test_hidden": "A hidden test."})]
    assert found[0].path == str(tmp_path / "public" / "test_numpy_ann.py")
    assert [m.name for m in discovery.test_modules(("hidden",), str(tmp_path))] == \
        ["test_no_graded_file.py", "test_numpy_ann_hidden.py"]
    assert discovery.test_modules(("public", "hidden"), str(tmp_path / "public")) == []   # no such subfolders


def test_a_module_belongs_to_the_longest_stem_it_starts_with():
    assert discovery.stem_of("test_pytorch_ann_hidden.py", ("pytorch", "pytorch_ann")) == "pytorch_ann"
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
                                       "test_numpy_ann_hidden.py": {"test_hidden"}}
    assert grading.test_files(["numpy_ann"], ("public", "hidden")) == [
        str(tmp_path / "public" / "test_numpy_ann.py"), str(tmp_path / "hidden" / "test_numpy_ann_hidden.py")]
    assert grading.test_files(["numpy_ann"], ("hidden",)) == [str(tmp_path / "hidden" / "test_numpy_ann_hidden.py")]
    assert contract.test_functions() == {"public/test_numpy_ann.py::test_relu": "ReLU is max(z, 0).",
                                         "public/test_numpy_ann.py::test_plain": "test_plain",
                                         "hidden/test_no_graded_file.py::test_orphan": "test_orphan",
                                         "hidden/test_numpy_ann_hidden.py::test_hidden": "A hidden test."}


def test_the_real_tests_are_listed_alike_and_each_module_is_run_for_its_file():
    modules = discovery.test_modules()
    assert len(modules) >= 8 and sum(len(m.tests) for m in modules) >= 40
    assert [m.name for m in modules if m.stem is None] == [], "a test module the grader never runs (no graded file)"
    pairs = {(m.name, t) for m in modules for t in m.tests}
    assert {(name, t) for name, tests in config_mod.test_names().items() for t in tests} == pairs
    assert {tuple(key.split("/", 1)[1].split("::")) for key in contract.test_functions()} == pairs
    assert sorted(grading.test_files(assignment.STEMS, discovery.KINDS)) == sorted(m.path for m in modules)
