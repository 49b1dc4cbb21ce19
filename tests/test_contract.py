"""The contract table (autograder/contract.toml) against the stubs, the tests and the mutants."""
import os
import shutil
import sys
import tomllib

import pytest

from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "tools"))
import contract  # noqa: E402


@pytest.fixture(scope="module")
def promises():
    return contract.load()


def test_the_table_covers_every_student_function_and_names_real_tests_and_mutants(promises):
    assert contract.problems(promises) == []
    functions = {p["function"] for p in promises}
    assert functions == contract.student_functions(os.path.join(ROOT, "solution"))
    assert len(functions) >= 28 and len(promises) >= 50


def test_a_student_function_without_a_promise_is_named(promises):
    dropped = [p for p in promises if p["function"] != "fashionmnist.count_parameters"]
    assert "fashionmnist.count_parameters has a student block but no promise in autograder/contract.toml" \
        in contract.problems(dropped)


def test_a_missing_test_a_wrong_mutant_and_unknown_words_are_named(promises):
    first = dict(promises[0], tests=["public/test_numpy_ann.py::test_that_does_not_exist"],
                 mutant="ann_mse_loss", says="words no docstring has")
    found = contract.problems([first] + promises[1:])
    assert f"promise {first['id']}: no test public/test_numpy_ann.py::test_that_does_not_exist in autograder/tests" \
        in found
    assert any("mutant ann_mse_loss patches pytorch_ann.py, not numpy_ann.py" in line for line in found)
    assert any("'words no docstring has' is not in the docstring of NumpyANN._relu" in line for line in found)
    assert any("mutant ann_mse_loss already serves promise" in line for line in found)
    empty = dict(promises[0], tests=[])
    assert f"promise {empty['id']}: no test checks it" in contract.problems([empty] + promises[1:])


def test_a_stub_that_loses_a_function_disagrees_with_the_table(promises, tmp_path):
    handout = tmp_path / "handout"
    shutil.copytree(os.path.join(ROOT, "handout"), handout)
    path = handout / "fashionmnist.py"
    text = path.read_text()
    path.write_text(text.replace("def count_parameters(", "def count_trainable_parameters("))
    assert "promise fashionmnist.count_parameters.trainable_only: handout/fashionmnist.py has no count_parameters" \
        in contract.problems(promises, handout=str(handout))


def test_results_names_map_back_to_test_functions():
    tests = contract.test_functions()
    assert contract.test_of_result("NumpyANN._relu_grad is 0 where z <= 0 (including exactly 0) and 1 elsewhere",
                                   tests) == "public/test_numpy_ann.py::test_relu_grad"
    assert contract.test_of_result("NumpyANN: shapes of parameters, outputs and cached activations [5-4-3]",
                                   tests) == "public/test_numpy_ann.py::test_parameter_shapes"
    assert contract.test_of_result("no such test", tests) is None


def test_the_readme_shows_the_current_table(promises):
    with open(os.path.join(ROOT, "autograder", "README.md"), encoding="utf-8") as fh:
        readme = fh.read()
    assert contract.markdown(promises) in readme, "run: python tools/contract.py and paste it into autograder/README.md"


# ------------------------------------------------------------- also: measured by the mutants, rewritten
SMALL = '''# A small table: comments, a row without also, a row whose also ends in a comment.

[[promise]]
id = "a.one"     # the first row
function = "a.f"
says = "words with ] and [ and # and also = [ inside"
tests = ["public/test_a.py::test_one",
         "private/test_a_private.py::test_two"]  # the promise
also = ["public/test_a.py::test_x",
        "public/test_a.py::test_y"]
mutant = "m1"

# ---------------------------------------------------------------- a section
[[promise]]
id = "a.two"
function = "a.g"
says = 'a literal ] string'
tests = ["public/test_a.py::test_three"]
mutant = "m2"

[[promise]]  # the last row
id = "a.three"
function = "a.h"
says = "x"
tests = ["public/test_a.py::test_four"]
also = ["public/test_a.py::test_z"]  # measured
mutant = "m3"
'''
# a.one's also changes, a.two gets one, a.three loses its own
CHANGED = {"a.one": ["public/test_a.py::test_y", "public/test_a.py::test_w", "private/test_a_private.py::test_v"],
           "a.two": ["public/test_a.py::test_u"], "a.three": []}
REWRITTEN = SMALL.replace('''also = ["public/test_a.py::test_x",
        "public/test_a.py::test_y"]''', '''also = ["private/test_a_private.py::test_v",
        "public/test_a.py::test_w",
        "public/test_a.py::test_y"]''').replace('''tests = ["public/test_a.py::test_three"]
''', '''tests = ["public/test_a.py::test_three"]
also = ["public/test_a.py::test_u"]
''').replace('''also = ["public/test_a.py::test_z"]  # measured''', '''# measured''')


def small_table(tmp_path, text=SMALL):
    path = tmp_path / "contract.toml"
    path.write_text(text)
    return path


def test_an_unchanged_also_leaves_the_file_byte_identical_and_untouched(tmp_path):
    path = small_table(tmp_path)
    before = os.stat(path)
    same = {"a.one": ["public/test_a.py::test_y", "public/test_a.py::test_x"], "a.two": [],
            "a.three": ["public/test_a.py::test_z"]}
    assert contract.update_also(same, str(path)) == []
    assert path.read_text() == SMALL
    assert (os.stat(path).st_ino, os.stat(path).st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_a_changed_also_is_rewritten_with_every_comment_and_the_order_kept(tmp_path):
    path = small_table(tmp_path)
    assert sorted(contract.update_also(CHANGED, str(path))) == ["a.one", "a.three", "a.two"]
    assert path.read_text() == REWRITTEN
    assert os.listdir(tmp_path) == ["contract.toml"]                 # no temporary file left behind


def test_rewriting_twice_changes_nothing_more(tmp_path):
    once, changed = contract.rewrite_also(SMALL, CHANGED)
    twice, again = contract.rewrite_also(once, CHANGED)
    assert changed and (twice, again) == (once, [])
    only_two = {"a.two": CHANGED["a.two"]}                          # rows not measured are left alone
    assert contract.rewrite_also(SMALL, only_two)[0] == SMALL.replace(
        'tests = ["public/test_a.py::test_three"]\n', 'tests = ["public/test_a.py::test_three"]\n'
        'also = ["public/test_a.py::test_u"]\n')


def test_the_tests_are_never_rewritten(tmp_path):
    """A mutant's own tests stay as written: measured_also leaves them out, the rewrite keeps their bytes,
    and a mutant that no longer fails any of them is an error an update does not hide."""
    promises = tomllib.loads(SMALL)["promise"]
    failed = {"m1": {"public/test_a.py::test_x", "public/test_a.py::test_w"},
              "m2": {"public/test_a.py::test_three"}, "m3": {"public/test_a.py::test_four"}}
    assert contract.measured_also(promises, dict(failed, m2={"public/test_a.py::test_three", "public/test_a.py::test_v"})) \
        == {"a.one": ["public/test_a.py::test_w", "public/test_a.py::test_x"], "a.two": ["public/test_a.py::test_v"],
            "a.three": []}
    measured = contract.measured_also(promises, failed)
    path = small_table(tmp_path)
    contract.update_also(measured, str(path))
    after = tomllib.loads(path.read_text())["promise"]
    assert [p["tests"] for p in after] == [p["tests"] for p in promises]
    assert path.read_text().count('tests = ["public/test_a.py::test_one",\n'
                                  '         "private/test_a_private.py::test_two"]  # the promise\n') == 1
    assert contract.mutant_problems(after, failed, table="t.toml") == [
        "t.toml: promise a.one (mutant m1): no longer fails any of its own tests (public/test_a.py::test_one, "
        "private/test_a_private.py::test_two); the tests are the promise and no update changes them: fix the test or "
        "the mutant (tests/mutants/mutants.toml)"]
    # one own test of two: not an error, a note
    one_of_two = dict(failed, m1={"public/test_a.py::test_one", "public/test_a.py::test_x", "public/test_a.py::test_w"})
    assert contract.mutant_problems(after, one_of_two) == []
    assert contract.mutant_notes(after, one_of_two, table="t.toml") == [
        "t.toml: promise a.one: its mutant m1 passes private/test_a_private.py::test_two, of its own tests (another "
        "of them catches it)"]


def test_a_different_measurement_names_the_row_the_tests_and_the_update(tmp_path):
    promises = tomllib.loads(SMALL)["promise"]
    failed = {"m1": {"public/test_a.py::test_one", "private/test_a_private.py::test_two", "public/test_a.py::test_x",
                     "public/test_a.py::test_w"}, "m3": {"public/test_a.py::test_four", "public/test_a.py::test_z"}}
    assert contract.mutant_problems(promises, failed, {"m3": ["a renamed test"]}, table="t.toml") == [
        "t.toml: promise a.one (mutant m1): also fails public/test_a.py::test_w, in neither its tests nor its also; "
        "make contract-update (tools/variants.py mutants --update) rewrites its also from this run",
        "t.toml: promise a.two (mutant m2): the mutant was not graded",
        "t.toml: promise a.three (mutant m3): loses points in results named by no test function: a renamed test "
        "(is a docstring's first line shared or changed?)"]
    # a test of its also the run passes (measured by some runs, not by others): a note, with the update
    assert contract.mutant_notes(promises, failed, table="t.toml") == [
        "t.toml: promise a.one: its mutant m1 passes public/test_a.py::test_y, of its also; make contract-update "
        "(tools/variants.py mutants --update) would drop it"]


def test_sometimes_is_allowed_either_way_and_never_moved_into_also(tmp_path):
    """A test a mutant fails on some machines only (sometimes, by hand): its failure is no error, its pass no
    note, and the update neither adds it to also nor rewrites the sometimes entry."""
    text = SMALL.replace('tests = ["public/test_a.py::test_three"]\n',
                         'tests = ["public/test_a.py::test_three"]\n'
                         'sometimes = ["public/test_a.py::test_near"]  # near its threshold\n')
    promises = tomllib.loads(text)["promise"]
    fails = {"m1": {"public/test_a.py::test_one", "private/test_a_private.py::test_two", "public/test_a.py::test_x",
                    "public/test_a.py::test_y"},
             "m2": {"public/test_a.py::test_three", "public/test_a.py::test_near"},
             "m3": {"public/test_a.py::test_four", "public/test_a.py::test_z"}}
    passes = dict(fails, m2={"public/test_a.py::test_three"})
    for failed in (fails, passes):
        assert contract.mutant_problems(promises, failed) == []
        assert contract.mutant_notes(promises, failed) == []
        assert contract.measured_also(promises, failed)["a.two"] == []
    path = small_table(tmp_path, text)
    assert contract.update_also(contract.measured_also(promises, fails), str(path)) == []
    assert path.read_text() == text
    # without it, the same run is an error
    plain = tomllib.loads(SMALL)["promise"]
    assert any("also fails public/test_a.py::test_near" in line for line in contract.mutant_problems(plain, fails))


def test_a_rewrite_that_would_change_more_than_also_writes_nothing(tmp_path, monkeypatch):
    path = small_table(tmp_path)
    real = contract._also_edit
    monkeypatch.setattr(contract, "_also_edit", lambda text, row, tests: (row["tests"][0], *real(text, row, tests)[1:]))
    with pytest.raises(contract.ContractError, match="would change more than the also lists; nothing was written"):
        contract.update_also(CHANGED, str(path))
    monkeypatch.setattr(contract, "_also_edit", real)
    monkeypatch.setattr(contract.os, "replace", lambda *a: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        contract.update_also(CHANGED, str(path))
    assert path.read_text() == SMALL and os.listdir(tmp_path) == ["contract.toml"]
