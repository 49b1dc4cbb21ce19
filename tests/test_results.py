"""results.json: Gradescope's field rules, size caps, strict JSON and atomic writes."""
import json
import os
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "autograder"))
from grader import results  # noqa: E402

CONFIG = {"_hash": "abc123", "_overrides": []}


def record(i, **changes):
    rec = {"name": f"test {i}", "number": f"1.{i}", "score": 1.0, "max_score": 1.0, "status": "passed",
           "output": "", "visibility": "visible", "tags": ["numpy_ann", "public"]}
    rec.update(changes)
    return rec


def strict_loads(text):
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")
    return json.loads(text, parse_constant=refuse)


def write_and_read(tmp_path, obj):
    path = tmp_path / "results.json"
    results.atomic_write(str(path), obj)
    text = path.read_text(encoding="utf-8")
    return text, strict_loads(text)


# --- the specification's fields --------------------------------------------------------------------------------

FULL_TEST = {"score": 1.0, "max_score": 2.0, "status": "passed", "name": "n", "number": "1.1", "output": "",
             "visibility": "visible", "tags": ["t"]}

# (where, key, a valid value, an invalid value); "top" fields go on the result, "test" fields on its one test
FIELDS = [
    ("top", "score", 1.0, "1.0"),
    ("top", "execution_time", 136, 1.5),
    ("top", "output", "Text relevant to the entire submission", 3),
    ("top", "output_format", "simple_format", "markdown"),
    ("top", "test_output_format", "ansi", "rich"),
    ("top", "test_name_format", "html", "bold"),
    ("top", "visibility", "after_due_date", "public"),
    ("top", "stdout_visibility", "after_published", "shown"),
    ("top", "extra_data", {"seeds": [1, 2], "note": "x"}, ["not", "an", "object"]),
    ("top", "tests", [dict(FULL_TEST)], {"not": "a list"}),
    ("top", "leaderboard", [{"name": "Accuracy", "value": 0.926}, {"name": "Time", "value": 15.1, "order": "asc"},
                            {"name": "Stars", "value": "*****", "order": "desc"}],
     [{"name": "Time", "value": 15.1, "order": "up"}]),
    ("test", "score", 1.0, "1"),
    ("test", "max_score", 2.0, None),
    ("test", "status", "failed", "error"),
    ("test", "name", "Your name here", 7),
    ("test", "name_format", "md", "rst"),
    ("test", "number", "1.1", ["1", "1"]),
    ("test", "output", "Giant multiline string\nline 2", b"bytes"),
    ("test", "output_format", "html", "plain"),
    ("test", "tags", ["tag1", "tag2"], "tag1"),
    ("test", "visibility", "hidden", "secret"),
    ("test", "extra_data", {"seconds": 1.5}, "x"),
]


def minimal(where, key, value):
    """The smallest document the specification accepts, plus ``key``."""
    if where == "top":
        doc = {"score": 1.0}
        doc[key] = value
        return doc
    return {"tests": [{"status": "passed", key: value}]}


def ours(where, key, value):
    """A complete document in our own stricter shape, with ``key`` set."""
    doc = results.build([], CONFIG, 1, "all good")
    doc["tests"] = [dict(FULL_TEST)]
    doc["score"] = 1.0
    (doc if where == "top" else doc["tests"][0])[key] = value
    return doc


@pytest.mark.parametrize("where,key,good,bad", FIELDS, ids=[f"{w}-{k}" for w, k, *_ in FIELDS])
def test_every_field_of_the_spec_is_accepted_and_type_checked(where, key, good, bad):
    assert results.validate(minimal(where, key, good), own_rules=False) == []
    assert results.validate(ours(where, key, good)) == []
    problems = results.validate(minimal(where, key, bad), own_rules=False)
    assert problems and any(key in p for p in problems), problems
    assert results.validate(ours(where, key, bad))


def test_field_lists_match_the_spec():
    assert {w + "." + k for w, k, *_ in FIELDS} == ({"top." + k for k in results.TOP_KEYS}
                                                     | {"test." + k for k in results.TEST_KEYS})


@pytest.mark.parametrize("own_rules", [True, False])
def test_unknown_keys_are_refused(own_rules):
    doc = ours("top", "score", 1.0)
    doc["points"] = 1.0
    assert "unknown top-level key 'points'" in results.validate(doc, own_rules=own_rules)
    doc = ours("top", "score", 1.0)
    doc["tests"][0]["hint"] = "x"
    assert any("unknown key 'hint'" in p for p in results.validate(doc, own_rules=own_rules))
    doc = ours("top", "leaderboard", [{"name": "Time", "value": 1.0, "rank": 3}])
    assert any("unknown key 'rank'" in p for p in results.validate(doc, own_rules=own_rules))


def test_spec_needs_a_top_level_score_or_scored_or_status_tests():
    assert results.validate({}, own_rules=False)
    assert results.validate({"tests": [{"name": "style"}]}, own_rules=False)
    assert results.validate({"tests": [{"name": "style", "status": "failed"}]}, own_rules=False) == []
    assert results.validate({"score": 3.0, "tests": [{"name": "style"}]}, own_rules=False) == []
    # our own output always carries scores: an informational test without one is refused
    doc = ours("top", "score", 0.0)
    doc["tests"] = [{"name": "style", "number": "1.1", "status": "failed", "output": "", "visibility": "visible",
                     "tags": []}]
    assert any("lacks" in p and "score" in p for p in results.validate(doc))


def test_leaderboard_values_are_numbers_or_strings_and_finite():
    for value in (None, [1], True):
        assert results.validate(ours("top", "leaderboard", [{"name": "x", "value": value}]))
    assert results.validate(ours("top", "leaderboard", [{"value": 1.0}]))
    assert results.validate(ours("top", "leaderboard", [{"name": "x", "value": float("nan")}]))


@pytest.mark.parametrize("key", sorted(results.OWN_TOP_KEYS))
def test_our_output_always_has_the_fields_build_writes(key):
    doc = ours("top", "score", 1.0)
    del doc[key]
    assert any(key in p for p in results.validate(doc))
    if key != "tests":  # the spec needs a score or tests, nothing else
        assert results.validate(doc, own_rules=False) == []


def test_own_rules_stay():
    doc = ours("top", "score", 1.0)
    doc["tests"].append(dict(FULL_TEST, score=0.0))
    assert any("not unique" in p for p in results.validate(doc))
    assert results.validate(doc, own_rules=False) == []  # the spec numbers tests in order itself
    doc = ours("test", "score", 3.0)
    doc["score"] = 3.0
    assert any("outside 0..max_score" in p for p in results.validate(doc))
    doc = ours("top", "score", 2.0)
    assert any("sum" in p for p in results.validate(doc))
    assert results.validate(doc, own_rules=False) == []  # for Gradescope a top-level score overrides the sum
    assert results.validate(ours("test", "score", float("nan")))


def test_build_and_initial_validate():
    assert results.validate(results.initial(None, "starting")) == []
    result = results.build([record(1), record(2, score=0.5, status="failed")], CONFIG, 12.4, "done",
                           leaderboard=[{"name": "accuracy", "value": 0.91, "order": "desc"}], extra={"partial": False})
    assert results.validate(result) == [] and result["score"] == 1.5 and result["execution_time"] == 12


def test_build_passes_extra_data_and_output_format_through():
    result = results.build([record(1, extra_data={"seconds": 2.5}, output_format="md"), record(2)], CONFIG, 1, "")
    first, second = result["tests"]
    assert first["extra_data"] == {"seconds": 2.5} and first["output_format"] == "md"
    assert "extra_data" not in second and "output_format" not in second
    assert results.validate(result) == []


# --- sizes ---------------------------------------------------------------------------------------------------

def test_a_1mb_test_output_is_cut_to_8kb_with_a_note(tmp_path):
    big = "".join(f"line {i}\n" for i in range(200_000))[:1_000_000]
    result = results.build([record(1, output=big, status="failed", score=0.0)], CONFIG, 1, "")
    out = result["tests"][0]["output"]
    assert results.OUTPUT_CAP == 8 * 1024 and len(out) <= results.OUTPUT_CAP
    assert out.startswith("line 0\nline 1\n")
    kept = len(out) - len(out[out.index("\n[... output cut"):out.index("]\n") + 2])
    assert f"[... output cut: {len(big) - kept:,} more characters; the grader keeps at most 8 KB per test]" in out
    # a caller's own object is capped when written, too
    text, written = write_and_read(tmp_path, {**result, "tests": [dict(result["tests"][0], output=big)]})
    assert written["tests"][0]["output"] == out and results.validate(written) == []


def test_200_huge_outputs_stay_under_1mb_and_validate(tmp_path):
    records = [record(i, output=f"test {i} says: " + "x" * 1_000_000, extra_data={"seconds": 0.1}) for i in range(200)]
    result = results.build(records, CONFIG, 1, "general output " * 10_000)
    text, written = write_and_read(tmp_path, result)
    assert len(text.encode("utf-8")) < results.TOTAL_CAP
    assert results.validate(written) == [] and len(written["tests"]) == 200 and written["score"] == 200.0
    for i, t in enumerate(written["tests"]):
        assert t["output"].startswith(f"test {i} says: xx") and "output cut" in t["output"]
        assert len(t["output"]) >= results.MIN_OUTPUT
    assert "output cut" in written["output"]


def test_the_instructor_report_has_its_own_larger_cap():
    lines = "".join(f"numpy_ann: refused open('/etc/passwd') #{i}\n" for i in range(5_000))
    short = "x" * (results.OUTPUT_CAP + 1000)
    report = record(0, name=results.REPORT_NAME, number="0.1", score=0.0, max_score=0.0, output=lines,
                    visibility="hidden")
    result = results.build([record(1, output=short), report], CONFIG, 1, "")
    assert len(result["tests"][0]["output"]) <= results.OUTPUT_CAP
    out = result["tests"][1]["output"]
    assert results.OUTPUT_CAP < len(out) <= results.REPORT_CAP == 32 * 1024
    assert "output cut" in out and "32 KB" in out and out.startswith("numpy_ann: refused")
    report["output"] = short  # within the report's cap: kept whole
    assert results.build([report], CONFIG, 1, "")["tests"][0]["output"] == short


def test_names_and_the_top_level_output_are_capped():
    result = results.build([record(1, name="n" * 10_000)], CONFIG, 1, "o" * 100_000)
    assert len(result["tests"][0]["name"]) == results.NAME_CAP
    assert len(result["output"]) <= results.TOP_OUTPUT_CAP and "output cut" in result["output"]


def test_bounded_is_idempotent_and_leaves_its_argument_alone():
    original = {"score": 0.0, "output": "o" * 50_000, "tests": [dict(FULL_TEST, score=0.0, output="t" * 50_000)]}
    copy = json.loads(json.dumps(original))
    once = results.bounded(original)
    assert original == copy
    assert results.bounded(once) == once and once != original


# --- strict JSON ---------------------------------------------------------------------------------------------

def test_non_finite_numbers_are_written_as_text(tmp_path):
    nan, inf = float("nan"), float("inf")
    result = results.build([record(1, extra_data={"loss": nan, "curve": [1.0, [inf, -inf]]})], CONFIG, 1, "",
                           leaderboard=[{"name": "loss", "value": nan, "order": "asc"}, {"name": "t", "value": inf}],
                           extra={"best": -inf})
    text, written = write_and_read(tmp_path, result)
    assert "NaN" not in text and "Infinity" not in text
    assert written["tests"][0]["extra_data"] == {"loss": "nan", "curve": [1.0, ["inf", "-inf"]]}
    assert [e["value"] for e in written["leaderboard"]] == ["nan", "inf"]
    assert written["extra_data"]["best"] == "-inf"
    assert results.validate(written) == []


def test_a_nan_test_score_becomes_0_and_failed(tmp_path):
    result = results.build([record(1, score=float("nan"), output="ran"), record(2, max_score=float("inf")),
                            record(3)], CONFIG, float("nan"), "")
    nan_test, inf_test, fine = result["tests"]
    assert nan_test["score"] == 0.0 and nan_test["status"] == "failed" and nan_test["max_score"] == 1.0
    assert nan_test["output"].startswith("ran\n") and "finite score" in nan_test["output"]
    assert inf_test["score"] == 0.0 and inf_test["max_score"] == 0.0 and inf_test["status"] == "failed"
    assert fine["score"] == 1.0 and fine["status"] == "passed"
    assert result["score"] == 1.0 and result["execution_time"] == 0
    assert results.validate(result) == []
    text, written = write_and_read(tmp_path, result)
    assert all(isinstance(t["score"], float) for t in written["tests"])


def test_lone_surrogates_and_nul_do_not_break_the_write(tmp_path):
    bad = "a\ud800b\x00c\udfff"
    result = results.build([record(1, output=bad, name=bad, extra_data={bad: bad})], CONFIG, 1, bad,
                           leaderboard=[{"name": bad, "value": bad}])
    text, written = write_and_read(tmp_path, result)
    assert text.isascii() and "\\u0000" not in text and "\\ud800" not in text.lower()
    assert written["tests"][0]["output"] == "a\ufffdb\ufffdc\ufffd" == written["output"]
    assert written["tests"][0]["extra_data"] == {"a\ufffdb\ufffdc\ufffd": "a\ufffdb\ufffdc\ufffd"}
    assert results.validate(written) == []


def test_numpy_numbers_are_written_as_plain_numbers(tmp_path):
    np = pytest.importorskip("numpy")
    _, written = write_and_read(tmp_path, results.initial(None, "x") | {
        "leaderboard": [{"name": "acc", "value": np.float32(0.5)}, {"name": "n", "value": np.int64(3)}]})
    assert [e["value"] for e in written["leaderboard"]] == [0.5, 3]


# --- atomic writes -------------------------------------------------------------------------------------------

def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "results.json"
    results.atomic_write(str(path), results.initial(None, "first"))
    before = path.read_text()
    broken = results.initial(None, "second")
    broken["extra_data"]["thing"] = object()
    with pytest.raises(TypeError):
        results.atomic_write(str(path), broken)
    assert path.read_text() == before and os.listdir(tmp_path) == ["results.json"]
    assert strict_loads(before)["output"] == "first"


def test_a_write_replaces_the_file_readable_by_all(tmp_path):
    path = tmp_path / "sub" / "results.json"
    results.atomic_write(str(path), results.initial(None, "first"))
    results.atomic_write(str(path), results.initial(None, "second"))
    assert strict_loads(path.read_text())["output"] == "second"
    assert os.listdir(path.parent) == ["results.json"] and (os.stat(path).st_mode & 0o777) == 0o644
