"""handout/ is generated from solution/, stays in sync, and fails cleanly."""
import ast
import os
import subprocess
import sys

import pytest

from conftest import HANDOUT, PYTHON, ROOT, SOLUTION

sys.path.insert(0, os.path.join(ROOT, "tools"))
import make_handout  # noqa: E402

FILES = make_handout.HANDOUT_FILES


def read(*parts):
    with open(os.path.join(*parts), encoding="utf-8") as fh:
        return fh.read()


def test_committed_handout_matches_generator():
    generated = make_handout.generate(SOLUTION)
    assert sorted(generated) == sorted(FILES)
    for name, text in generated.items():
        assert read(HANDOUT, name) == text, f"handout/{name} is stale: run `make handout`"


def test_check_mode_reports_a_stale_handout(tmp_path):
    for name in FILES:
        (tmp_path / name).write_text(read(HANDOUT, name))
    (tmp_path / "numpy_ann.py").write_text(read(HANDOUT, "numpy_ann.py") + "# edited by hand\n")
    proc = subprocess.run([PYTHON, os.path.join(ROOT, "tools", "make_handout.py"), "--check",
                           "--handout", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "numpy_ann.py" in proc.stderr and "make handout" in proc.stderr


def _api(source):
    """{qualified name: (arguments with defaults, docstring)} of classes and functions."""
    api = {}

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                api[prefix + child.name] = ("class", ast.get_docstring(child))
                visit(child, prefix + child.name + ".")
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                api[prefix + child.name] = (ast.unparse(child.args),
                                            [ast.unparse(d) for d in child.decorator_list],
                                            ast.get_docstring(child))
    visit(ast.parse(source), "")
    return api


@pytest.mark.parametrize("name", FILES)
def test_names_signatures_and_docstrings_are_identical(name):
    assert _api(read(SOLUTION, name)) == _api(read(HANDOUT, name))


@pytest.mark.parametrize("name", FILES)
def test_no_solution_line_leaks_into_the_handout(name):
    source = read(SOLUTION, name)
    lines = source.splitlines()
    inside, outside = set(), set()
    blocks = make_handout.solution_blocks(source, name)
    in_block = set()
    for begin, end, _ in blocks:
        in_block.update(range(begin, end + 1))
    for number, line in enumerate(lines, start=1):
        (inside if number in in_block else outside).add(line.strip())
    secret = {line for line in inside - outside if line and not line.startswith("#")}
    handout_lines = {line.strip() for line in read(HANDOUT, name).splitlines()}
    assert not secret & handout_lines


def test_every_stub_names_its_function():
    text = read(HANDOUT, "numpy_ann.py")
    for fn in ("_relu", "_relu_grad", "_softmax", "_cross_entropy", "_forward", "_backward",
               "train", "predict", "accuracy"):
        assert f'raise NotImplementedError("NumpyANN.{fn}:' in text


@pytest.mark.parametrize("bad, message", [
    ("def f():\n    # BEGIN SOLUTION\n    # BEGIN SOLUTION\n    x = 1\n    # END SOLUTION\n", "x.py:3:"),
    ("def f():\n    x = 1\n    # END SOLUTION\n", "x.py:3:"),
    ("def f():\n    # BEGIN SOLUTION\n    x = 1\n", "x.py:2:"),
    ("# BEGIN SOLUTION\nx = 1\n# END SOLUTION\n", "x.py:1:"),
])
def test_bad_markers_fail_loudly_with_file_and_line(bad, message):
    with pytest.raises(make_handout.MarkerError, match=message):
        make_handout.make_handout_source(bad, "x.py")


def test_generator_keeps_indentation_and_return_lines():
    src = "class A:\n    def f(self):\n        out = 0\n        # BEGIN SOLUTION\n        out = 1\n        # END SOLUTION\n        return out\n"
    got = make_handout.make_handout_source(src, "a.py")
    assert got == ("class A:\n    def f(self):\n        out = 0\n        # >>> YOUR CODE HERE >>>\n"
                   '        raise NotImplementedError("A.f: replace this line with your code")\n'
                   "        # <<< END OF YOUR CODE <<<\n        return out\n")


@pytest.mark.parametrize("name", ["numpy_ann.py", "pytorch_ann.py", "pytorch_cnn.py", "fashionmnist.py"])
def test_untouched_handout_exits_nonzero_with_friendly_lines(name):
    proc = subprocess.run([PYTHON, name], cwd=HANDOUT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "Not implemented yet:" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr


def test_thresholds_students_see_match_the_grader_config():
    import re
    import tomllib
    with open(os.path.join(ROOT, "autograder", "config.toml"), "rb") as fh:
        thresholds = tomllib.load(fh)["thresholds"]
    for stem, value in thresholds.items():
        shown = re.search(r"^THRESHOLD = ([0-9.]+)$", read(HANDOUT, f"{stem}.py"), re.M)
        assert shown and float(shown.group(1)) == value, f"{stem}: handout THRESHOLD differs from config.toml"
