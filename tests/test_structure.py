"""The grader's shape: no module-level mutable state, one run object per grading, the assignment
table as the one place for the graded files, config.toml checked key by key."""
import ast
import importlib
import json
import os
import pkgutil
import re
import sys
import types

import pytest

from conftest import ROOT, SOLUTION

sys.path.insert(0, os.path.join(ROOT, "autograder"))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import grader  # noqa: E402
from grader import assignment, config as config_mod, run as run_mod  # noqa: E402
from grader.results import REPORT_NAME  # noqa: E402

IMMUTABLE = (str, bytes, int, float, complex, bool, type(None), range, re.Pattern, type(Ellipsis),
             types.FunctionType, types.BuiltinFunctionType, types.ModuleType, property, staticmethod, classmethod)


NAMEDTUPLE_PARTS = ("_fields", "_field_defaults")     # typing.NamedTuple's own bookkeeping


def mutable_parts(value, where, seen=None):
    """The places in ``value`` that can be changed in place (lists, dicts, sets, objects with state)."""
    seen = set() if seen is None else seen
    if id(value) in seen:
        return []
    seen.add(id(value))
    if isinstance(value, type):
        return [p for k, v in vars(value).items() if not k.startswith("__") and k not in NAMEDTUPLE_PARTS
                for p in mutable_parts(v, f"{where}.{k}", seen)]
    if hasattr(value, "cache_info"):     # functools.cache / lru_cache: a table that fills up
        return [f"{where}: a cache"]
    if hasattr(type(value), "__get__") and not isinstance(value, (dict, list, set)):   # descriptors: methods,
        return []                                                                       # slots, tuple fields
    if isinstance(value, IMMUTABLE) or callable(value) and not isinstance(value, (dict, list, set)):
        return []
    if isinstance(value, (tuple, frozenset)):
        return [p for i, v in enumerate(value) for p in mutable_parts(v, f"{where}[{i}]", seen)]
    if isinstance(value, types.MappingProxyType):
        return [p for k, v in value.items() for p in mutable_parts(v, f"{where}[{k!r}]", seen)]
    if type(value) is object:            # a sentinel
        return []
    return [f"{where}: {type(value).__name__}"]


def module_state(module):
    return [p for name, value in vars(module).items() if not name.startswith("__")
            and not (isinstance(value, types.ModuleType))
            for p in mutable_parts(value, f"{module.__name__}.{name}")
            if getattr(value, "__module__", module.__name__) == module.__name__ or not isinstance(value, type)]


def grader_modules():
    names = [m.name for m in pkgutil.iter_modules(grader.__path__)]
    assert {"grading", "assignment", "config", "run"} <= set(names)
    return [importlib.import_module(f"grader.{n}") for n in names]


def test_no_module_level_mutable_state_in_the_grader():
    """Every module global and class attribute of grader/ is immutable: the run object owns all state."""
    found = [p for module in grader_modules() for p in module_state(module)]
    assert found == []


def test_the_state_check_finds_mutable_globals():
    """The check above is not blind: a module with a dict, a list in a tuple, a class-level set, a cache."""
    fake = types.ModuleType("fake")
    fake.__dict__.update(TABLE={}, PAIRS=(1, [2]), FROZEN=types.MappingProxyType({"a": (1,)}))

    class Holder:
        registry = set()
    Holder.__module__ = "fake"
    fake.Holder = Holder
    import functools
    fake.cached = functools.lru_cache(lambda: 1)
    found = module_state(fake)
    assert any("fake.TABLE" in p for p in found) and any("fake.PAIRS[1]" in p for p in found)
    assert any("fake.cached" in p for p in found)
    assert any("Holder.registry" in p for p in found) and not any("FROZEN" in p for p in found)


def test_two_runs_in_one_process_share_nothing(tmp_path):
    """Two gradings in the same process: the second's results hold only its own tests and notes."""
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    assert run_mod.main(["--submission", SOLUTION, "--results", str(first), "--quiet", "--tests", "public",
                         "--files", "numpy_ann", "-k", "relu"]) == 0
    assert run_mod.main(["--submission", SOLUTION, "--results", str(second), "--quiet", "--tests", "public",
                         "--files", "numpy_ann", "-k", "softmax"]) == 0
    a, b = (json.loads(p.read_text()) for p in (first, second))
    names_a = {t["name"] for t in a["tests"] if t["max_score"]}
    names_b = {t["name"] for t in b["tests"] if t["max_score"]}
    assert names_a and names_b and not names_a & names_b
    assert all("relu" in n.lower() for n in names_a) and all("softmax" in n.lower() for n in names_b)
    assert b["score"] == sum(t["max_score"] for t in b["tests"])


# -- the assignment table ------------------------------------------------------------------------------

def test_the_table_lists_exactly_the_student_blocks_of_solution():
    """assignment.FILES names every function with a student block in solution/, and nothing else."""
    import contract
    written = {}
    for name in contract.student_functions(SOLUTION):
        stem, function = name.split(".", 1)
        written.setdefault(stem, set()).add(function)
    assert {f.stem: set(f.functions) for f in assignment.FILES} == written


def test_the_table_lists_the_files_solution_ships():
    """Every upload name of the table exists in solution/ (the reference submission), and the handout holds
    exactly the table's code files plus utils.py."""
    assert all(os.path.isfile(os.path.join(SOLUTION, name)) for name in assignment.UPLOADS)
    handout = sorted(f for f in os.listdir(os.path.join(ROOT, "handout")) if f.endswith(".py"))
    assert handout == sorted(assignment.HANDOUT_FILES)


# Outside solution/, handout/, the table and the tests, a graded file's name may appear only where these say.
NAMED_ON_PURPOSE = {
    "autograder/config.toml": "the policy is per file: [thresholds], [budget.<file>], time_limits.train_<file>",
    "autograder/contract.toml": "the contract names each promise's function (documentation of the tests)",
    "tools/bench_floor.py": "benchmark: each file's training run alone, without the grader",
    "tools/bench_batch.py": "benchmark: hostile submissions that replace NumpyANN.train",
    "tools/make_fixtures.py": "computes the public tests' expected values with the reference NumpyANN",
    "tools/flaky.py": "the alternatives it re-grades and the CNN's tighter margin target",
    "tools/variants.py": "the cheap CNN budget mutants are graded with (config keys)",
    "autograder/grader/config.py": "declares the settings of each file's [budget.<file>] table",
}
STEM = re.compile(r"\b(" + "|".join(assignment.STEMS) + r")\b")


def code_lines_naming_a_file(path):
    """Line numbers where a graded file's name appears in code: comments and docstrings left out."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        text = fh.read()
    if not path.endswith(".py"):
        return [i + 1 for i, line in enumerate(text.splitlines())
                if STEM.search(line.split("#", 1)[0])]
    tree = ast.parse(text)
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and node.body
                  and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            if STEM.search(node.value):
                lines.add(node.lineno)
        elif isinstance(node, ast.Name) and STEM.search(node.id) or isinstance(node, ast.Attribute) \
                and STEM.search(node.attr) or isinstance(node, ast.alias) and STEM.search(node.name) \
                or isinstance(node, ast.ImportFrom) and STEM.search(node.module or ""):
            lines.add(node.lineno)
    return sorted(lines)


def test_the_graded_files_are_named_only_in_the_table():
    """A search for the four file names in code outside solution/, handout/, grader/assignment.py, the tests
    and the documentation finds only the places NAMED_ON_PURPOSE explains."""
    hits = {}
    skip_dirs = {"solution", "handout", "tests", "build", "dist", ".git", ".venv", "__pycache__", ".ci"}
    for dirpath, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = [d for d in dirnames if d not in skip_dirs]
        for name in filenames:
            rel = os.path.relpath(os.path.join(dirpath, name), ROOT)
            if name.endswith((".md", ".txt", ".png", ".pth", ".gz", ".npz", ".pyc", ".json", ".csv")) \
                    or rel == "autograder/grader/assignment.py":
                continue
            lines = code_lines_naming_a_file(os.path.join(dirpath, name))
            if lines:
                hits[rel] = lines
    unexplained = {rel: lines for rel, lines in hits.items() if rel not in NAMED_ON_PURPOSE}
    assert unexplained == {}
    assert set(NAMED_ON_PURPOSE) <= set(hits), "an entry of NAMED_ON_PURPOSE no longer names a file: remove it"


def test_the_search_sees_code_and_skips_documentation(tmp_path):
    path = tmp_path / "x.py"
    path.write_text('"""numpy_ann in a docstring"""\n# pytorch_cnn in a comment\nA = 1\nB = "fashionmnist.py"\n'
                    'import pytorch_ann\nfrom numpy_ann import X\n')
    assert code_lines_naming_a_file(str(path)) == [4, 5, 6]


# -- config.toml ---------------------------------------------------------------------------------------

def write_config(tmp_path, edit):
    with open(config_mod.DEFAULT_PATH, encoding="utf-8") as fh:
        text = fh.read()
    path = tmp_path / "config.toml"
    path.write_text(edit(text))
    return str(path)


@pytest.mark.parametrize("edit, says", [
    (lambda t: t.replace("epochs = 5", "epoch = 5"), "unknown setting budget.numpy_ann.epoch; did you mean "
                                                     "budget.numpy_ann.epochs?"),
    (lambda t: t.replace("[feedback]", "[feedbak]"), "unknown section [feedbak]; did you mean feedback?"),
    (lambda t: t.replace("epochs = 5", 'epochs = "5"'), "budget.numpy_ann.epochs must be a whole number"),
    (lambda t: t.replace("numpy_ann = 0.77", "numpy_ann = 1.5"), "thresholds.numpy_ann must be a number at least 0 "
                                                                 "and at most 1, not 1.5"),
    (lambda t: t.replace("cpu_seconds = 1800", ""), "limits.cpu_seconds is missing"),
    (lambda t: t.replace("schedule = [[3, 0.1], [1, 0.03], [1, 0.01]]", "schedule = [[3, 0.1], [1]]"),
     "budget.pytorch_ann.schedule must be a list of [epochs, learning rate] pairs"),
    (lambda t: t.replace('hidden_visibility = "after_published"', 'hidden_visibility = "later"'),
     "grading.hidden_visibility must be a string (visible, hidden, after_due_date, after_published)"),
    (lambda t: t + '"test_accuracy_threshold" = 5\n', 'weights."test_accuracy_threshold" matches 4 tests: '
                                                      '"test_fashionmnist_hidden.py::test_accuracy_threshold"'),
    (lambda t: t + '"test_numpy_ann.py::test_relux" = 2\n', "test_numpy_ann.py has no test test_relux; did you "
                                                            "mean test_relu?"),
    (lambda t: t + '"test_numpy_ann_hiden.py::test_relu" = 2\n', "there is no test module test_numpy_ann_hiden.py; "
                                                                 "did you mean test_numpy_ann_hidden.py?"),
])
def test_a_wrong_setting_is_named_with_the_closest_valid_one(tmp_path, edit, says):
    with pytest.raises(config_mod.ConfigError) as info:
        config_mod.load(write_config(tmp_path, edit))
    assert says in str(info.value)


def test_every_setting_is_declared_once_and_the_shipped_config_states_each():
    """config.toml sets every declared setting (it is the whole policy); each has a description."""
    import tomllib
    with open(config_mod.DEFAULT_PATH, "rb") as fh:
        raw = tomllib.load(fh)
    for dotted, keys in config_mod.SCHEMA.items():
        table = config_mod._table(raw, dotted)
        for name, key in keys.items():
            assert key.description, f"{dotted}.{name}"
            if dotted != "size_limits":
                assert name in table, f"config.toml does not state {dotted}.{name}"


def test_an_override_of_an_unknown_setting_names_the_closest(tmp_path):
    with pytest.raises(config_mod.ConfigError) as info:
        config_mod.load(None, ["budget.numpy_ann.seeds=3"])
    assert "did you mean budget.numpy_ann.seed?" in str(info.value)
    assert config_mod.load(None, ["budget.numpy_ann.seed=3"])["budget"]["numpy_ann"]["seed"] == 3


def test_a_weight_applies_to_its_own_module_only(tmp_path):
    """"test_numpy_ann.py::test_relu" = 3 changes that test; a same-named test elsewhere keeps its points."""
    path = write_config(tmp_path, lambda t: t + '"test_numpy_ann.py::test_relu" = 3\n'
                                                '"test_numpy_ann_hidden.py::test_relu_and_grad_on_dtypes" = 0.25\n')
    out = tmp_path / "r.json"
    assert run_mod.main(["--submission", SOLUTION, "--results", str(out), "--quiet", "--files", "numpy_ann",
                         "-k", "relu", "--config", path, "--skip-training", "numpy_ann"]) == 0
    tests = [t for t in json.loads(out.read_text())["tests"] if t["name"] != REPORT_NAME]
    points = sorted((t["max_score"], t["tags"][1], t["name"].split(" ")[0]) for t in tests)
    # test_relu (public) 3; test_relu_grad (public, not named) keeps 1; the hidden dtype test, 3 parameters, 0.25
    assert points == [(0.25, "hidden", "NumpyANN._relu")] * 3 + [(1.0, "public", "NumpyANN._relu_grad"),
                                                                 (3.0, "public", "NumpyANN._relu")], points
    assert all(t["score"] == t["max_score"] for t in tests)


def test_weights_of_hidden_tests_do_not_break_the_handout(tmp_path, monkeypatch):
    """handout.zip ships config.toml but no hidden tests: a weight for a hidden test is kept unchecked there,
    while a typo in a public test's name is still an error."""
    (tmp_path / "public").mkdir()
    (tmp_path / "public" / "test_numpy_ann.py").write_text("def test_relu(numpy_ann):\n    pass\n")
    monkeypatch.setattr(config_mod, "TESTS_DIR", str(tmp_path))
    kept = config_mod.check_weights({"test_numpy_ann_hidden.py::test_accuracy_threshold": 5}, "config.toml")
    assert kept == {"test_numpy_ann_hidden.py::test_accuracy_threshold": 5.0}
    with pytest.raises(config_mod.ConfigError, match="has no test test_relux; did you mean test_relu"):
        config_mod.check_weights({"test_numpy_ann.py::test_relux": 2}, "config.toml")
    (tmp_path / "hidden").mkdir()                      # the full grader: the same key is an error
    with pytest.raises(config_mod.ConfigError, match="there is no test module test_numpy_ann_hidden.py"):
        config_mod.check_weights({"test_numpy_ann_hidden.py::test_accuracy_threshold": 5}, "config.toml")


def test_config_prints_every_setting_with_its_description():
    text = config_mod.describe(config_mod.load())
    assert "budget.numpy_ann" in text and "learning rate" in text and "lookup_gap" in text
