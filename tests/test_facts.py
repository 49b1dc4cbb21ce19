"""Each fact once: thresholds live in config.toml, points in the tests' weight markers, each setting's
default and description in grader/config.py; every copy a student or TA reads is stamped by
`make handout` (tools/make_handout.py) and checked here."""
import os
import re
import shutil
import subprocess
import sys
import tomllib

import pytest

from conftest import PYTHON, ROOT

sys.path.insert(0, os.path.join(ROOT, "tools"))
import make_handout  # noqa: E402
from grader import assignment, points as points_mod  # noqa: E402
from grader import config as config_mod  # noqa: E402

# What a student or TA reads: the files students get, the documentation, the grader's tests.
READ = ("solution/*.py", "handout/*.py", "tools/student_README.md", "*.md", "autograder/*.md",
        "autograder/tests/*/*.py", "tests/test_solution_accuracy.py", "tests/test_handout.py")
# Numbers that look like a threshold but are another fact: the judgement rule's floor of the stubs.
NOT_A_THRESHOLD = re.compile(r"t < 0\.80")
# New thresholds for the copy, each distinct and found nowhere before the change.
NEW = {stem: f"0.{61 + k}" for k, stem in enumerate(assignment.STEMS)}


def copy_repository(tmp_path):
    """The repository's files (not .git, the venv, build/ or dist/) under tmp_path/repo."""
    dest = tmp_path / "repo"
    shutil.copytree(ROOT, dest, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "__pycache__", "data"))
    return dest


def read_files(root):
    """{relative path: text} of the READ files under root."""
    import glob
    out = {}
    for pattern in READ:
        for path in sorted(glob.glob(os.path.join(root, pattern))):
            with open(path, encoding="utf-8") as fh:
                out[os.path.relpath(path, root)] = fh.read()
    return out


def occurrences(text, value):
    """Where ``value`` (e.g. "0.80") stands as a number in ``text``, not counting NOT_A_THRESHOLD."""
    masked = NOT_A_THRESHOLD.sub(lambda m: "#" * len(m.group()), text)
    return len(re.findall(rf"(?<![\w.]){re.escape(value)}(?![\d])", masked))


def set_thresholds(config_path, values):
    with open(config_path, encoding="utf-8") as fh:
        text = fh.read()
    head, table, tail = re.split(r"(?ms)^(\[thresholds\]\n.*?)(?=^\[|^#|\Z)", text, maxsplit=1)
    table = "[thresholds]\n" + "".join(f"{stem} = {value}\n" for stem, value in values.items()) + "\n"
    with open(config_path, "w", encoding="utf-8") as fh:
        fh.write(head + table + tail)


def make(repo, target):
    venv = os.path.join(ROOT, ".venv")
    return subprocess.run(["make", "-s", "-C", str(repo), target, f"VENV={venv}", "-o", f"{venv}/.installed"],
                          capture_output=True, text=True, timeout=120)


def test_changing_thresholds_in_config_and_make_handout_changes_every_copy(tmp_path):
    """In a copy of the repository, new thresholds in config.toml and `make handout` change every place a
    student or TA reads one (found by its old value, not by the generator's own list), and no old value is
    left; `make check-handout` fails between the two steps."""
    repo = copy_repository(tmp_path)
    with open(repo / "autograder" / "config.toml", "rb") as fh:
        old = {stem: f"{v:.2f}" for stem, v in tomllib.load(fh)["thresholds"].items()}
    before = read_files(repo)
    assert not any(occurrences(text, v) for text in before.values() for v in NEW.values())
    set_thresholds(repo / "autograder" / "config.toml", NEW)
    stale = make(repo, "check-handout")
    assert stale.returncode != 0 and "run `make handout`" in stale.stderr, stale.stdout + stale.stderr
    done = make(repo, "handout")
    assert done.returncode == 0, done.stdout + done.stderr
    after = read_files(repo)
    assert sorted(after) == sorted(before)
    for path, text in after.items():
        for value in set(old.values()):
            assert occurrences(text, value) == 0, f"{path} still says {value}"
            stems = [s for s in old if old[s] == value]
            assert sum(occurrences(text, NEW[s]) for s in stems) == occurrences(before[path], value), path
    for stem, value in NEW.items():
        for path in (f"solution/{stem}.py", f"handout/{stem}.py"):
            assert re.search(rf"^THRESHOLD = {value}$", after[path], re.M), path
            assert re.search(rf"threshold \({value}\)", after[path]), f"{path}: the module docstring"
        for path in ("tools/student_README.md", "README.md"):
            assert re.search(rf"{stem} {value}\b", after[path]), f"{path}: {stem}"
    assert make(repo, "check-handout").returncode == 0


def test_a_copy_that_disagrees_is_named_and_a_lost_place_stops_make_handout(tmp_path):
    repo = copy_repository(tmp_path)
    tool = [PYTHON, str(repo / "tools" / "make_handout.py")]
    path = repo / "tools" / "student_README.md"
    text = path.read_text()
    path.write_text(text.replace("accuracy thresholds: numpy_ann 0.77", "accuracy thresholds: numpy_ann 0.75"))
    proc = subprocess.run([*tool, "--check"], capture_output=True, text=True)
    assert proc.returncode == 1 and "tools/student_README.md disagree" in proc.stderr, proc.stderr
    assert "-- the accuracy tests (accuracy thresholds: numpy_ann 0.75" in proc.stderr
    path.write_text(text.replace("accuracy thresholds:", "thresholds:"))
    proc = subprocess.run(tool, capture_output=True, text=True)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "tools/student_README.md: no place matches" in proc.stderr and "PLACES" in proc.stderr


def test_every_copy_in_the_tree_agrees_with_its_home():
    """The committed solution/, READMEs and student README say what config.toml and the markers say."""
    for path, (text, stamped) in make_handout.stamped().items():
        assert text == stamped, f"{path} disagrees with config.toml or the weight markers: run `make handout`"


def test_the_documented_totals_are_the_points_of_the_tests():
    totals = points_mod.totals(points_mod.collect())
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as fh:
        said = re.findall(r"([0-9.]+) points in all", fh.read())
    assert said == [f"{totals['all']['public'] + totals['all']['private']:g}"]
    with open(os.path.join(ROOT, "tools", "student_README.md"), encoding="utf-8") as fh:
        said = re.findall(r"(\d+) passed — ([0-9.]+)/([0-9.]+) points", fh.read())
    public = f"{totals['all']['public']:g}"
    assert said == [(str(totals["all"]["public_tests"]), public, public)]


def test_points_are_counted_from_the_markers_per_parameter(tmp_path):
    """Default 1, a weight marker, a parametrized test once per parameter, public and private apart."""
    (tmp_path / "public").mkdir()
    (tmp_path / "private").mkdir()
    (tmp_path / "public" / "test_numpy_ann.py").write_text(
        "import pytest\n\ndef test_a():\n    pass\n\n@pytest.mark.weight(2.5)\ndef test_b():\n    pass\n")
    (tmp_path / "private" / "test_numpy_ann_private.py").write_text(
        "import pytest\n\n@pytest.mark.weight(0.5)\n@pytest.mark.parametrize('x', [1, 2, 3])\n"
        "def test_c(x):\n    pass\n\n@pytest.mark.file('fashionmnist')\ndef test_d():\n    pass\n")
    totals = points_mod.totals(points_mod.collect(str(tmp_path)))
    assert totals == {
        "numpy_ann": {"public": 3.5, "private": 1.5, "public_tests": 2, "private_tests": 3, "tests": 5},
        "fashionmnist": {"public": 0, "private": 1.0, "public_tests": 0, "private_tests": 1, "tests": 1},
        "all": {"public": 3.5, "private": 2.5, "public_tests": 2, "private_tests": 4, "tests": 6}}


def test_make_config_prints_each_setting_its_default_and_the_points(capsys):
    assert config_mod.main([]) == 0
    out = capsys.readouterr().out
    shown, section = {}, None
    for line in out.splitlines():
        if line.startswith("["):
            section = line.split("]")[0][1:]
        elif section:
            shown[f"{section}.{line[2:].split(' = ')[0].strip()}"] = line
    for dotted, keys in config_mod.SCHEMA.items():
        for name, key in keys.items():
            line = shown.get(f"{dotted}.{name}")
            assert line and line.endswith(key.description), f"{dotted}.{name}: {line}"
            default = "required" if key.default is config_mod.REQUIRED else \
                "none" if key.default is None else repr(key.default)
            assert f"default {default}" in line, line
    totals = points_mod.totals(points_mod.collect())["all"]
    assert re.search(rf"^  all +{totals['public'] + totals['private']:g} points in {totals['tests']} tests", out,
                     re.M), out[-600:]


def test_config_states_only_what_the_course_changes():
    """Every key of config.toml has no default (a course fact: thresholds, budgets, limits) or a value
    other than its default; every declared setting has a description."""
    with open(config_mod.DEFAULT_PATH, "rb") as fh:
        raw = tomllib.load(fh)
    for dotted, keys in config_mod.SCHEMA.items():
        for name, key in keys.items():
            assert key.description.strip(), f"{dotted}.{name} has no description"
            table = config_mod._table(raw, dotted)
            if name in table and key.default not in (config_mod.REQUIRED, None):
                assert table[name] != key.default, (f"config.toml sets {dotted}.{name} to its default "
                                                     f"{key.default!r}: leave it out")


def test_weights_in_the_config_are_refused_with_what_to_do(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(open(config_mod.DEFAULT_PATH, encoding="utf-8").read()
                    + '\n[weights]\n"test_numpy_ann.py::test_relu" = 3\n')
    with pytest.raises(config_mod.ConfigError) as info:
        config_mod.load(str(path))
    assert str(path) in str(info.value) and "@pytest.mark.weight" in str(info.value)
    with pytest.raises(config_mod.ConfigError, match="@pytest.mark.weight"):
        config_mod.load(None, ['weights."test_numpy_ann.py::test_relu"=3'])


def test_the_grader_gives_each_test_the_points_make_config_counts(tmp_path):
    """The points of a graded run's tests (max_score in results.json) are the ones counted from the markers."""
    import json
    from conftest import SOLUTION
    from grader import run as run_mod
    from grader.results import REPORT_NAME
    out = tmp_path / "r.json"
    assert run_mod.main(["--submission", SOLUTION, "--results", str(out), "--quiet", "--files", "fashionmnist",
                         "-k", "figures or count", "--skip-training", "fashionmnist"]) == 0
    graded = [t for t in json.loads(out.read_text())["tests"] if t["name"] != REPORT_NAME]
    counted = [t for t in points_mod.collect() if t.stem == "fashionmnist"
               and re.search("figures|count", t.nodeid.split("::")[-1])]
    assert len(graded) == len(counted) > 3 and {t.points for t in counted} > {1.0}, counted   # weighted tests too
    assert sorted((t["tags"][1], t["max_score"]) for t in graded) == sorted((t.kind, t.points) for t in counted)
