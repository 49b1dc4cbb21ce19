"""Mutants must lose points (half of them in public tests); alternatives must get full marks."""
import ast
import json
import os
import subprocess
import sys

import pytest

from conftest import PYTHON, ROOT

sys.path.insert(0, os.path.join(ROOT, "tools"))
import contract  # noqa: E402
import variants  # noqa: E402


def run_variants(kind, tmp_path):
    out = tmp_path / f"{kind}.json"
    proc = subprocess.run([PYTHON, os.path.join(ROOT, "tools", "variants.py"), kind, "--json", str(out)],
                          capture_output=True, text=True, timeout=1800)
    report = json.loads(out.read_text())
    assert report["errors"] == [], report["errors"]
    return proc, report["rows"]


# 60-odd gradings on 2 jobs: 900 CPU-seconds cold; on a loaded host its wall time passed the suite's
# 1200-second timeout, which is there to catch a hang, not a long test (run_variants' own limit, 1800 s, ends it first)
@pytest.mark.timeout(2400)
@pytest.mark.duration(470)
def test_every_mutant_loses_points_and_public_tests_catch_half(tmp_path):
    proc, rows = run_variants("mutants", tmp_path)
    assert len(rows) >= 40
    assert {r["file"] for r in rows} == {"numpy_ann", "pytorch_ann", "pytorch_cnn", "fashionmnist"}
    assert [r["name"] for r in rows if not r["caught_by"] or r["lost"] <= 0] == []
    assert 2 * sum(r["public"] for r in rows) >= len(rows)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert variants.check_contract(rows) == []


def test_a_mutant_caught_elsewhere_is_named_with_its_row_and_tests():
    """check_contract on a made-up grading (nothing is graded): the first promise's mutant loses points
    only in a pytorch_ann test.  Its own tests are named as an error no update hides; the test outside its
    row as one the update fixes."""
    promise = contract.load()[0]
    rows = [{"name": promise["mutant"], "caught_by": ["PyTorchANN: self.model is Linear, ReLU, Linear with the "
                                                      "given sizes [6-5-3]"]}]
    where = f"autograder/contract.toml: promise {promise['id']} (mutant {promise['mutant']}): "
    own, measured = variants.check_contract(rows, only=True)
    assert own.startswith(f"{where}no longer fails any of its own tests ({', '.join(promise['tests'])}); ")
    assert "no update changes them" in own
    assert measured == (f"{where}also fails public/test_pytorch_ann.py::test_architecture, in neither its tests nor "
                        "its also; make contract-update (tools/variants.py mutants --update) rewrites its also from "
                        "this run")


def test_the_contract_is_checked_by_the_graders_test_ids_not_by_names():
    """A grading's rows carry each lost test's id (extra_data.test_id): a test whose docstring (the results
    name) matches no test function today is still placed by its id, so rewording a docstring breaks nothing."""
    promise = contract.load()[0]
    rows = [{"name": promise["mutant"], "caught_by": ["a docstring a TA has just reworded"],
             "caught_ids": [promise["tests"][0]]}]
    assert variants.check_contract(rows, only=True) == []
    rows[0]["caught_ids"] = ["public/test_pytorch_ann.py::test_architecture"]
    problems = variants.check_contract(rows, only=True)
    assert len(problems) == 2 and "also fails public/test_pytorch_ann.py::test_architecture" in problems[1]


@pytest.mark.duration(172)
def test_every_alternative_gets_full_marks(tmp_path):
    proc, rows = run_variants("alternatives", tmp_path)
    assert len(rows) >= 8
    assert [(r["name"], r["failed"]) for r in rows if r["score"] != r["max"]] == []
    assert proc.returncode == 0, proc.stdout[-3000:]


def test_a_patch_that_no_longer_applies_is_named(tmp_path):
    spec = {"name": "stale", "file": "numpy_ann.py", "edits": [["text that is not in the file", "x"]]}
    with pytest.raises(variants.VariantError, match="stale: the text to replace occurs 0 times in numpy_ann.py"):
        variants.build(spec, str(tmp_path), str(tmp_path / "stale"))


# Training budgets small enough for seconds, and thresholds of 0 so that the reference passes every
# training test: a training test that ran a poisoned function then loses its points.
TINY = {"numpy_ann": ("budget.numpy_ann.train_images=2000", "budget.numpy_ann.test_images=1000"),
        "pytorch_ann": ("budget.pytorch_ann.train_images=1000", "budget.pytorch_ann.val_images=500",
                        "budget.pytorch_ann.judgement_train_images=1000", "budget.pytorch_ann.test_images=1000"),
        "pytorch_cnn": ("budget.pytorch_cnn.train_images=480", "budget.pytorch_cnn.test_images=500"),
        "fashionmnist": ("budget.fashionmnist.test_images=1000",)}
# one function per file that the training tests do call: poisoning it must cost points
CALLED = {"numpy_ann": "train", "pytorch_ann": "train", "pytorch_cnn": "train", "fashionmnist": "predict"}


def training_tests(stem):
    """{test function: first docstring line} of the file's tests marked @pytest.mark.training."""
    found = {}
    for kind in ("public", "private"):
        folder = os.path.join(ROOT, "autograder", "tests", kind)
        for filename in sorted(os.listdir(folder)):
            if not (filename.startswith(f"test_{stem}") and filename.endswith(".py")):
                continue
            with open(os.path.join(folder, filename), encoding="utf-8") as fh:
                tree = ast.parse(fh.read())
            for fn in tree.body:
                if isinstance(fn, ast.FunctionDef) and any(ast.unparse(d).endswith("mark.training")
                                                           for d in fn.decorator_list):
                    found[fn.name] = ast.get_docstring(fn).strip().splitlines()[0]
    return found


@pytest.mark.duration(60)
@pytest.mark.parametrize("stem", sorted(variants.UNTRAINED))
def test_training_tests_never_call_the_untrained_functions(stem, tmp_path):
    """variants.UNTRAINED is what lets a variant's training tests stand as the reference's.  Proof: the
    reference with those functions' bodies replaced by a raise scores on every training test what the
    reference scores (full marks, thresholds 0); and with one function the tests do call also poisoned,
    a training test loses points (the check can fail).  The same for variants.UNCALLED_BY, one test at a
    time: with its functions poisoned too, that test alone (-k) scores what the reference scores, and it
    is one of the tests that poisoning the called function costs points."""
    tests = training_tests(stem)
    assert tests, f"no training tests found for {stem}"
    overrides = (*TINY[stem], f"thresholds.{stem}=0")
    with open(os.path.join(ROOT, "solution", f"{stem}.py"), encoding="utf-8") as fh:
        reference = fh.read()
    raising = 'raise AssertionError("a training test called a function listed in variants.UNTRAINED")'
    cases = [("reference", (), tests), ("untrained", variants.UNTRAINED[stem], tests),
             ("called", (*variants.UNTRAINED[stem], CALLED[stem]), tests)]
    for test, uncalled in variants.UNCALLED_BY.items():
        if stem in uncalled:
            assert test in tests, f"variants.UNCALLED_BY names {test}, not a training test of {stem}"
            cases.append((test, (*variants.UNTRAINED[stem], *uncalled[stem]), {test: tests[test]}))
    scores = {}
    for name, poisoned, graded_tests in cases:
        folder = tmp_path / name
        variants.build({"name": name}, str(tmp_path), str(folder))
        if poisoned:
            (folder / f"{stem}.py").write_text(ast.unparse(variants.hollowed(reference, poisoned, raising)))
        select = ("--tests", "private", "-k", " or ".join(graded_tests))
        graded = variants.scores_of(variants.grade(str(folder), stem, overrides, 1, select))
        scores[name] = {n: graded.get(n, (None, None))[:2] for n in graded_tests.values()}
    assert all(s is not None and s == m > 0 for s, m in scores["reference"].values()), scores["reference"]
    assert scores["untrained"] == scores["reference"]
    assert scores["called"] != scores["reference"], f"poisoning {CALLED[stem]} cost no points: {scores}"
    for test in (t for t in variants.UNCALLED_BY if stem in variants.UNCALLED_BY[t]):
        name = tests[test]
        assert scores[test] == {name: scores["reference"][name]}, (test, scores[test], scores["reference"])
        assert scores["called"][name] != scores["reference"][name], f"poisoning {CALLED[stem]} cost {test} nothing"


def test_a_variant_trains_as_the_reference_only_when_it_edits_untrained_bodies(tmp_path):
    """A variant of predict trains as the reference (all its training tests left out); one of train, or of a
    default value (run at import), does not; one of report_my_judgement leaves out only the accuracy test."""
    def spec(find, replace):
        return {"name": "v", "file": "pytorch_cnn.py", "edits": [[find, replace]]}
    edit_predict = spec("labels = torch.cat(", "labels = 1 + torch.cat(")
    edit_train = spec("loss_fn = nn.CrossEntropyLoss()", "loss_fn = nn.MSELoss()")
    edit_default = spec("def predict(self, X):", "def predict(self, X=print('imported')):")
    edit_judgement = spec("def report_my_judgement(self):", "def report_my_judgement(self):\n        return 'x'")
    for case, expected, narrowed in ((edit_predict, True, "reference's"), (edit_train, False, "graded"),
                                     (edit_default, False, "graded"),
                                     (edit_judgement, False, "test_accuracy_threshold the reference's")):
        folder = tmp_path / str(len(os.listdir(tmp_path)))
        variants.build(case, str(tmp_path), str(folder))
        assert variants.trains_as_reference(case, str(folder)) is expected, case
        assert variants.narrowing(case, str(folder))[1] == narrowed, case
    assert not variants.trains_as_reference({**edit_predict, "files": [["x.pth", "fmnist.pth"]]}, str(folder))


def test_a_mutant_without_a_contract_row_trains_only_when_its_quick_tests_miss_it(tmp_path, monkeypatch):
    """variants.evaluate on made-up gradings (nothing is graded): a mutant in no contract row that loses points
    in its quick tests (--skip-training) is not graded again with training; one that does not is graded in
    full and caught there; a mutant of the contract table is graded in full at once."""
    calls = []
    base = {"quick test": (1.0, 1.0, "public"), "training test": (4.0, 4.0, "private")}

    def fake_grade(folder, stem, overrides, threads, extra=(), tag="results"):
        calls.append((os.path.basename(folder), tuple(extra)))
        quick = 0.0 if os.path.basename(folder) == "caught_quick" else 1.0
        tests = [{"name": "quick test", "score": quick, "max_score": 1.0, "tags": [stem, "public"]}]
        if not extra:
            tests.append({"name": "training test", "score": 0.0, "max_score": 4.0, "tags": [stem, "private"]})
        return tests
    monkeypatch.setattr(variants, "grade", fake_grade)
    promised = contract.load()[0]["mutant"]
    monkeypatch.setattr(variants, "promised_mutants", lambda: frozenset({promised}))
    edit = [["out = np.maximum(z, 0)", "out = np.maximum(z, 0.01 * z)"]]
    rows = {}
    for name in ("caught_quick", "caught_training", promised):
        spec = {"name": name, "file": "numpy_ann.py", "edits": edit}
        rows[name] = variants.evaluate("mutants", spec, str(tmp_path), str(tmp_path), {"numpy_ann": base}, (), 1)
    assert calls == [("caught_quick", ("--skip-training", "numpy_ann")),
                     ("caught_training", ("--skip-training", "numpy_ann")), ("caught_training", ()),
                     (promised, ())]
    assert rows["caught_quick"]["caught_by"] == ["quick test"] and rows["caught_quick"]["training"].startswith("left out")
    assert rows["caught_training"]["caught_by"] == ["training test"] and rows["caught_training"]["training"] == "graded"
    assert rows[promised]["training"] == "graded"


def test_only_an_alternative_that_edits_init_alone_may_run_with_the_cheap_budgets(tmp_path, monkeypatch):
    """An alternative marked cheap is graded with CHEAP when it edits only __init__ (its training is then the
    reference's once the architecture test passes) or the functions its cheap_edits names; marked cheap but
    editing train unnamed, it is refused before anything is graded."""
    graded = []
    monkeypatch.setattr(variants, "grade", lambda folder, stem, overrides, *rest, **kw: graded.append(overrides)
                        or [{"name": "t", "score": 1.0, "max_score": 1.0, "tags": [stem, "public"]}])
    init_only = {"name": "init", "file": "pytorch_cnn.py", "cheap": "why", "edits": [["nn.Dropout(p=0.3)", "nn.Dropout(0.3)"]]}
    row = variants.evaluate("alternatives", init_only, str(tmp_path), str(tmp_path), {}, (), 1)
    assert graded == [variants.CHEAP] and row["training"] == "cheap budgets: why" and row["ok"]
    in_train = {"name": "train", "file": "pytorch_cnn.py", "cheap": "why",
                "edits": [["loss_fn = nn.CrossEntropyLoss()", "loss_fn = nn.CrossEntropyLoss(reduction='mean')"]]}
    with pytest.raises(variants.VariantError, match="train: cheap budgets are only for an alternative that edits "
                                                   "nothing but __init__"):
        variants.evaluate("alternatives", in_train, str(tmp_path), str(tmp_path), {}, (), 1)
    assert graded == [variants.CHEAP]
    named = dict(in_train, name="named", cheap_edits=["train"])          # the functions it names may change
    assert variants.evaluate("alternatives", named, str(tmp_path), str(tmp_path), {}, (), 1)["ok"]
    assert graded == [variants.CHEAP, variants.CHEAP]
