"""The grader's shape: no module-level mutable state, one run object per grading, the assignment
table as the one place for the graded files, config.toml checked key by key."""
import ast
import enum
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
    if isinstance(value, enum.EnumMeta):  # its members are fixed (the class's tables are enum's bookkeeping);
        return [p for member in value            # what each member carries must be immutable too
                for p in mutable_parts(member, f"{where}.{member.name}", seen)]
    if isinstance(value, enum.Enum):
        return [p for k, v in vars(value).items() if k != "__objclass__"
                for p in mutable_parts(v, f"{where}.{k}", seen)]
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

    class Choice(enum.Enum):               # an enum is fixed, but not what a member carries
        FIXED = "fixed"
        HOLDS = "holds"
    Choice.__module__ = "fake"
    Choice.HOLDS.items = []
    fake.Choice = Choice
    found = module_state(fake)
    assert any("fake.Choice.HOLDS.items" in p for p in found) and not any("FIXED" in p for p in found)
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
    (lambda t: t.replace("[thresholds]", "[threshold]"), "unknown section [threshold]; did you mean thresholds?"),
    (lambda t: t.replace("epochs = 5", 'epochs = "5"'), "budget.numpy_ann.epochs must be a whole number"),
    (lambda t: t.replace("numpy_ann = 0.77", "numpy_ann = 1.5"), "thresholds.numpy_ann must be a number at least 0 "
                                                                 "and at most 1, not 1.5"),
    (lambda t: t.replace("cpu_seconds = 1800", ""), "limits.cpu_seconds is missing"),
    (lambda t: t.replace("schedule = [[3, 0.1], [1, 0.03], [1, 0.01]]", "schedule = [[3, 0.1], [1]]"),
     "budget.pytorch_ann.schedule must be a list of [epochs, learning rate] pairs"),
    (lambda t: t + '\n[grading]\nprivate_visibility = "later"\n',
     "grading.private_visibility must be a string (visible, hidden, after_due_date, after_published)"),
])
def test_a_wrong_setting_is_named_with_the_closest_valid_one(tmp_path, edit, says):
    with pytest.raises(config_mod.ConfigError) as info:
        config_mod.load(write_config(tmp_path, edit))
    assert says in str(info.value)


def test_an_override_of_an_unknown_setting_names_the_closest(tmp_path):
    with pytest.raises(config_mod.ConfigError) as info:
        config_mod.load(None, ["budget.numpy_ann.seeds=3"])
    assert "did you mean budget.numpy_ann.seed?" in str(info.value)
    assert config_mod.load(None, ["budget.numpy_ann.seed=3"])["budget"]["numpy_ann"]["seed"] == 3


def test_config_prints_every_setting_with_its_description():
    text = config_mod.describe(config_mod.load())
    assert "budget.numpy_ann" in text and "learning rate" in text and "lookup_gap" in text


# ------------------------------------------------------------------------------ the test writer's kit
TEST_DIR = os.path.join(ROOT, "autograder", "tests")
JUDGEMENT_KEYWORDS = ("rtol", "atol", "tol", "tolerance", "cutoff", "threshold")


def grader_test_modules():
    return sorted(os.path.join(folder, f)
                  for folder in (os.path.join(TEST_DIR, "public"), os.path.join(TEST_DIR, "private"))
                  for f in os.listdir(folder) if f.startswith("test_") and f.endswith(".py"))


def _number(node):
    """The value of a numeric literal (with its sign), else None."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        node = node.operand
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    return None


def kit_problems(source, public):
    """What breaks the kit's rules in one test module's source: imports of another grader module, literal
    judgement numbers (a tolerance keyword given a number, a float compared with), the grader's math in a
    public test."""
    problems = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "grader":
            if node.module != "grader.kit":
                problems.append(f"line {node.lineno}: imports {node.module} (tests import grader.kit only)")
            if public and any(a.name in ("ref", "*") for a in node.names):
                problems.append(f"line {node.lineno}: a public test imports the grader's math (ref)")
        elif isinstance(node, ast.Import) and any(a.name.split(".")[0] == "grader" for a in node.names):
            problems.append(f"line {node.lineno}: imports {node.names[0].name} (tests import grader.kit only)")
        elif isinstance(node, ast.keyword) and node.arg in JUDGEMENT_KEYWORDS and _number(node.value) is not None:
            problems.append(f"line {node.value.lineno}: {node.arg}={_number(node.value)!r} is a literal "
                            "(name it in config.toml and read it with grader.kit.tolerance or config[...])")
        elif isinstance(node, ast.Compare):
            floats = [_number(n) for n in [node.left, *node.comparators] if isinstance(_number(n), float)]
            if floats:
                problems.append(f"line {node.lineno}: compares with the literal {floats[0]!r} (a number a test "
                                "judges by belongs in config.toml)")
    return problems


def test_grader_tests_import_the_kit_only_and_judge_by_named_numbers():
    """Every module in autograder/tests/ imports one grader module, grader.kit; none holds a literal
    tolerance or cutoff; no public test uses the grader's own math (it is not in the handout)."""
    found = {}
    for path in grader_test_modules():
        with open(path, encoding="utf-8") as fh:
            problems = kit_problems(fh.read(), public=os.sep + "public" + os.sep in path)
        if problems:
            found[os.path.relpath(path, ROOT)] = problems
    assert len(grader_test_modules()) >= 8 and found == {}, found


@pytest.mark.parametrize("source, public, says", [
    ("from grader.checks import fail\n", False, "imports grader.checks"),
    ("import grader.session\n", False, "imports grader.session"),
    ("from grader.kit import ref\n", True, "grader's math"),
    ("assert_close(a, b, 'f', rtol=1e-3)\n", False, "rtol=0.001 is a literal"),
    ("assert_close(a, b, 'f', atol=-0)\n", False, "atol=0 is a literal"),
    ("if share < 0.8:\n    pass\n", False, "literal 0.8"),
    ("ok = 0.005 < step < x\n", False, "literal 0.005"),
])
def test_the_kit_check_finds_each_kind_of_break(source, public, says):
    problems = kit_problems(source, public)
    assert len(problems) == 1 and says in problems[0], problems


@pytest.mark.parametrize("source", [
    "from grader.kit import ref, tolerance\nassert_close(a, b, 'f', **tolerance(config, 'sgd_step'))\n",
    "if labels.min() < 0 or labels.max() > 9:\n    fail('x')\n",
    "net.call('train', X, y, epochs=2, learning_rate=0.5)\n",
])
def test_the_kit_check_lets_data_and_counts_through(source):
    assert kit_problems(source, public=False) == []


def test_the_kit_is_the_grader_modules_tests_need_and_ref_is_lazy():
    """grader.kit imports without the grader's math (the handout has no refmath) and gives it on demand;
    tolerance() reads config [tolerances] by name."""
    import subprocess
    code = ("import sys; import grader.kit as k; assert 'grader.refmath' not in sys.modules; "
            "assert k.ref.__name__ == 'grader.refmath'; from grader import config; "
            "c = config.load(overrides=['tolerances.sgd_step=[0.5, 0.25]']); "
            "assert k.tolerance(c, 'sgd_step') == {'rtol': 0.5, 'atol': 0.25}")
    proc = subprocess.run([sys.executable, "-c", code], cwd=os.path.join(ROOT, "autograder"), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


# Size limits of the grader's pieces (issue "one home for each fact"): a class does one job.
MAX_METHODS, MAX_CLASS_LINES, MAX_FUNCTION_LINES = 12, 200, 60
# Kept over a limit on purpose, with the reason.
KEPT_LONG = {
    "session.Handle": "a thin proxy: one one-line method per request a test can make of a student's object, "
                      "so that every request a test writer has is in one place",
}


def oversized(source, module):
    """["module.Class: n methods / m lines" or "module.function: m lines"] of the pieces over the limits."""
    found = []
    for node in ast.walk(ast.parse(source)):
        lines = (node.end_lineno - node.lineno + 1) if hasattr(node, "end_lineno") else 0
        if isinstance(node, ast.ClassDef):
            methods = sum(isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef)) for m in node.body)
            if methods > MAX_METHODS or lines > MAX_CLASS_LINES:
                found.append(f"{module}.{node.name}: {methods} methods / {lines} lines")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and lines > MAX_FUNCTION_LINES:
            found.append(f"{module}.{node.name}: {lines} lines")
    return found


def test_no_grader_class_or_function_is_over_the_size_limits():
    folder = os.path.join(ROOT, "autograder", "grader")
    found = []
    for name in sorted(os.listdir(folder)):
        if name.endswith(".py"):
            with open(os.path.join(folder, name), encoding="utf-8") as fh:
                found += oversized(fh.read(), name[:-3])
    assert [f for f in found if f.split(":")[0] not in KEPT_LONG] == [], \
        f"over {MAX_METHODS} methods, {MAX_CLASS_LINES} lines a class or {MAX_FUNCTION_LINES} lines a function"
    assert sorted(f.split(":")[0] for f in found) == sorted(KEPT_LONG), "KEPT_LONG names a piece now in the limits"


def test_the_size_check_finds_a_long_function_and_a_class_of_many_methods():
    many = "class C:\n" + "".join(f"    def m{i}(self):\n        pass\n" for i in range(13))
    long = "def f():\n" + "    x = 1\n" * 60
    assert oversized(many + long, "m") == ["m.C: 13 methods / 27 lines", "m.f: 61 lines"]
    assert oversized("class D:\n    def m(self):\n        pass\n", "m") == []
