"""The contract table (autograder/contract.toml) against the stubs, the tests and the mutants."""
import os
import shutil
import sys

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
