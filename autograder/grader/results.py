"""results.json in Gradescope's format: build, validate, write atomically."""
import json
import os
import tempfile

from . import VERSION

STATUSES = ("passed", "failed")
VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")
TOP_KEYS = {"score", "execution_time", "output", "output_format", "visibility", "stdout_visibility", "tests",
            "leaderboard", "extra_data"}
# the 0-point, hidden test that lists limits hit and refused actions (run.instructor_report)
REPORT_NAME = "Instructor report: limits and forbidden actions"
TEST_KEYS = {"name", "number", "score", "max_score", "status", "output", "visibility", "tags"}


def atomic_write(path, obj):
    """Write JSON to ``path`` via a temporary file in the same folder and os.replace."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".results-", suffix=".json", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(obj, fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def initial(config, message):
    return {
        "score": 0.0, "execution_time": 0, "output": message, "output_format": "text",
        "visibility": "visible", "stdout_visibility": "hidden", "tests": [],
        "extra_data": {"grader_version": VERSION, "config_hash": config["_hash"] if config else None},
    }


def build(records, config, execution_time, output, leaderboard=None, extra=None):
    tests = []
    for r in records:
        tests.append({
            "name": r["name"], "number": r["number"], "score": round(float(r["score"]), 4),
            "max_score": float(r["max_score"]), "status": r["status"], "output": r["output"],
            "visibility": r["visibility"], "tags": list(r["tags"]),
        })
    result = {
        "score": round(sum(t["score"] for t in tests), 4),
        "execution_time": int(round(execution_time)),
        "output": output, "output_format": "text",
        "visibility": "visible", "stdout_visibility": "hidden",
        "tests": tests,
        "extra_data": dict({"grader_version": VERSION, "config_hash": config["_hash"],
                            "config_overrides": config.get("_overrides", [])}, **(extra or {})),
    }
    if leaderboard:
        result["leaderboard"] = leaderboard
    return result


def validate(result):
    """Return a list of problems with ``result`` against Gradescope's specification (empty if valid)."""
    problems = []
    if not isinstance(result, dict):
        return ["results.json must hold a JSON object"]
    for key in set(result) - TOP_KEYS:
        problems.append(f"unknown top-level key {key!r}")
    if not isinstance(result.get("score"), (int, float)) or isinstance(result.get("score"), bool):
        problems.append("score must be a number")
    if not isinstance(result.get("execution_time"), int):
        problems.append("execution_time must be an integer number of seconds")
    if result.get("output_format") not in ("text", "html", "simple_format", "md", "ansi"):
        problems.append("output_format is invalid")
    for key in ("visibility", "stdout_visibility"):
        if result.get(key) not in VISIBILITIES:
            problems.append(f"{key} must be one of {VISIBILITIES}")
    if not isinstance(result.get("output"), str):
        problems.append("output must be a string")
    tests = result.get("tests")
    if not isinstance(tests, list):
        return problems + ["tests must be a list"]
    numbers = set()
    for i, t in enumerate(tests):
        if not isinstance(t, dict):
            problems.append(f"tests[{i}] must be an object")
            continue
        missing = TEST_KEYS - set(t)
        if missing:
            problems.append(f"tests[{i}] lacks {sorted(missing)}")
        for key in set(t) - TEST_KEYS:
            problems.append(f"tests[{i}] has unknown key {key!r}")
        if t.get("status") not in STATUSES:
            problems.append(f"tests[{i}].status must be passed or failed")
        if t.get("visibility") not in VISIBILITIES:
            problems.append(f"tests[{i}].visibility is invalid")
        for key in ("score", "max_score"):
            if not isinstance(t.get(key), (int, float)) or isinstance(t.get(key), bool):
                problems.append(f"tests[{i}].{key} must be a number")
        if isinstance(t.get("score"), (int, float)) and isinstance(t.get("max_score"), (int, float)):
            if not 0 <= t["score"] <= t["max_score"]:
                problems.append(f"tests[{i}].score is outside 0..max_score")
        if not all(isinstance(t.get(k), str) for k in ("name", "number", "output")):
            problems.append(f"tests[{i}]: name, number and output must be strings")
        if not (isinstance(t.get("tags"), list) and all(isinstance(x, str) for x in t.get("tags", []))):
            problems.append(f"tests[{i}].tags must be a list of strings")
        if t.get("number") in numbers:
            problems.append(f"tests[{i}].number {t.get('number')} is not unique")
        numbers.add(t.get("number"))
    if isinstance(result.get("score"), (int, float)) and all(isinstance(t, dict) for t in tests):
        total = sum(t.get("score", 0) for t in tests if isinstance(t.get("score"), (int, float)))
        if abs(total - result["score"]) > 1e-6:
            problems.append("score is not the sum of the tests' scores")
    for entry in result.get("leaderboard", []) or []:
        if not (isinstance(entry, dict) and isinstance(entry.get("name"), str) and "value" in entry):
            problems.append("leaderboard entries need a name and a value")
    return problems
