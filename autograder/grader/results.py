"""results.json in Gradescope's format: build, bound, validate, write atomically.

The format follows Gradescope's "Autograder Specifications" page
(https://gradescope-autograders.readthedocs.io/en/latest/specs/) and its leaderboard page
(https://gradescope-autograders.readthedocs.io/en/latest/leaderboards/).  In the specification
every field is optional, with two links between them: the top-level ``score`` is needed unless
every test has one, and ``tests`` is needed when there is no top-level score; a test may leave out
its score when it has a ``status`` (an informational check).  A top-level score, when given,
overrides the sum of the tests.

Our own output is stricter (``validate(..., own_rules=True)``, the default): ``build`` and
``initial`` always write the top-level score, execution time, output, formats and visibilities,
and every test always has a name, number, score, max_score, status, output, visibility and tags;
numbers are unique, every score lies in 0..max_score and the top-level score is the sum of the
tests' scores.

A results.json must never be lost or too big for Gradescope:
* ``bounded`` caps every output (and name) and keeps the encoded file under ``TOTAL_CAP`` bytes,
  saying in the output itself how much was cut;
* ``atomic_write`` bounds the object again, turns non-finite numbers into text, replaces lone
  surrogates and NUL characters, encodes strictly (no NaN/Infinity) and only then replaces the
  old file, so an encoding error leaves the previous results.json as it was.
"""
import json
import math
import numbers
import os
import re
import tempfile

from . import VERSION

STATUSES = ("passed", "failed")
VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")
FORMATS = ("text", "html", "simple_format", "md", "ansi")
ORDERS = ("asc", "desc")
# every key the specification allows, at the top level, in a test and in a leaderboard entry
TOP_KEYS = frozenset({"score", "execution_time", "output", "output_format", "test_output_format",
                      "test_name_format", "visibility", "stdout_visibility", "extra_data", "tests", "leaderboard"})
TEST_KEYS = frozenset({"score", "max_score", "status", "name", "name_format", "number", "output", "output_format",
                       "tags", "visibility", "extra_data"})
LEADERBOARD_KEYS = frozenset({"name", "value", "order"})
# what our own build()/initial() always write (the specification requires none of it)
OWN_TOP_KEYS = frozenset({"score", "execution_time", "output", "output_format", "visibility", "stdout_visibility",
                          "tests"})
OWN_TEST_KEYS = frozenset({"name", "number", "score", "max_score", "status", "output", "visibility", "tags"})

MD_SPECIAL = re.compile(r"([\\`*_\[\]!|#~])")


def md_escape(text):
    """Text shown as markdown exactly as written: a message that quotes the student's own text (an
    exception, a name) cannot add links, images, HTML or table rows to the rendered output."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")   # HTML: entities in every renderer
    return MD_SPECIAL.sub(r"\\\1", text)


# the 0-point, hidden test that lists limits hit and refused actions (record.Record.instructor_report)
REPORT_NAME = "Instructor report: limits and forbidden actions"

OUTPUT_CAP = 8 * 1024        # characters kept of one test's output
TOP_OUTPUT_CAP = 16 * 1024   # characters kept of the top-level output
REPORT_CAP = 32 * 1024       # characters kept of the instructor report's output
NAME_CAP = 300               # characters kept of a test name, a tag or a leaderboard name
TOTAL_CAP = 1_000_000        # bytes of the encoded results.json
MIN_OUTPUT = 512             # no output is cut below this many characters to meet TOTAL_CAP
_TAIL_SHARE = 4              # a cut output keeps 1/4 of its room as the tail, the rest as the head


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _kb(chars):
    return f"{chars // 1024} KB" if chars % 1024 == 0 else f"{chars:,} characters"


def cut(text, limit, why):
    """``text`` in at most ``limit`` characters: head, a note of how much was cut and why, tail.

    ``why`` ends the note, e.g. "the grader keeps at most 8 KB per test".  Text already within the
    limit comes back unchanged, so cutting twice with the same limit changes nothing.
    """
    if len(text) <= limit:
        return text

    def note(removed):
        return f"\n[... output cut: {removed:,} more characters; {why}]\n"

    room = limit - len(note(len(text)))  # the longest note this text can need
    if room <= 0:
        return note(len(text)).strip()[:limit]
    tail = room // _TAIL_SHARE if room >= 4 * 80 else 0  # a short tail is only noise
    head = room - tail
    return text[:head] + note(len(text) - room) + (text[len(text) - tail:] if tail else "")


def _why(cap, what):
    return f"the grader keeps at most {_kb(cap)} {what}"


def bounded(result):
    """A copy of ``result`` whose strings fit the caps above and whose JSON fits in ``TOTAL_CAP`` bytes.

    Caps, in order:
    1. each test output at OUTPUT_CAP characters (the instructor report at REPORT_CAP), the
       top-level output at TOP_OUTPUT_CAP, names, tags and leaderboard names at NAME_CAP;
    2. if the encoded file is still over TOTAL_CAP, the longest outputs are cut further, all to a
       common length (never below MIN_OUTPUT characters), recomputed until the file fits;
    3. if that is not enough either, the tests' extra_data and the long top-level extra_data
       entries are replaced by a note.
    The tests themselves and their scores are never dropped.  ``result`` itself is not changed;
    the steps are deterministic and bounding a bounded result changes nothing.  Values of the
    wrong type are left for ``validate`` to report.
    """
    if not isinstance(result, dict):
        return result
    out = dict(result)
    fields = []  # (holder, key, full text, first cap, what the note says)
    if isinstance(out.get("output"), str):
        fields.append((out, "output", out["output"], TOP_OUTPUT_CAP, "of general output"))
    if isinstance(out.get("tests"), list):
        out["tests"] = [dict(t) if isinstance(t, dict) else t for t in out["tests"]]
        for t in out["tests"]:
            if not isinstance(t, dict):
                continue
            report = t.get("name") == REPORT_NAME
            if isinstance(t.get("name"), str):
                t["name"] = _cut_name(t["name"])
            if isinstance(t.get("tags"), list):
                t["tags"] = [_cut_name(x) if isinstance(x, str) else x for x in t["tags"]]
            if isinstance(t.get("output"), str):
                fields.append((t, "output", t["output"], REPORT_CAP if report else OUTPUT_CAP,
                               "of this report" if report else "per test"))
    if isinstance(out.get("leaderboard"), list):
        out["leaderboard"] = [dict(e) if isinstance(e, dict) else e for e in out["leaderboard"]]
        for entry in out["leaderboard"]:
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                entry["name"] = _cut_name(entry["name"])
    for holder, key, text, cap, what in fields:
        holder[key] = cut(text, cap, _why(cap, what))
    _fit_total(out, fields)
    if _size(out) > TOTAL_CAP:
        _drop_extra_data(out)
    return out


def _cut_name(text):
    return text if len(text) <= NAME_CAP else text[:NAME_CAP - 6] + " [...]"


def _size(obj):
    """Bytes of ``obj`` as atomic_write would write it (unknown objects measured by their repr)."""
    return len(json.dumps(jsonable(obj), indent=2, default=repr))


def _fit_total(out, fields):
    why = f"results.json must stay under {TOTAL_CAP:,} bytes, so long outputs are cut further"
    for _ in range(64):  # each round lowers a common length; a few rounds always suffice in practice
        excess = _size(out) - TOTAL_CAP
        if excess <= 0:
            return
        lengths = [len(json.dumps(h[k])) for h, k, *_ in fields]
        level = _water_level(lengths, excess + excess // 10 + 256)
        changed = False
        for (holder, key, text, _cap, _what), length in zip(fields, lengths):
            if length <= max(level, MIN_OUTPUT):
                continue
            # level counts encoded bytes; convert to characters at this text's own bytes-per-character
            limit = max(MIN_OUTPUT, int(len(holder[key]) * level / length))
            new = cut(text, limit, why)
            if len(new) < len(holder[key]):
                holder[key], changed = new, True
        if not changed:
            return


def _water_level(lengths, reduction):
    """The largest L with sum(max(0, n - L)) >= reduction (0 if even that is not enough)."""
    ordered = sorted(lengths, reverse=True)
    total = 0
    for i, n in enumerate(ordered):
        total += n
        following = ordered[i + 1] if i + 1 < len(ordered) else 0
        # cutting the first i+1 lengths down to L frees total - (i+1)*L; L may go down to `following`
        level = (total - reduction) // (i + 1)
        if level >= following:
            return max(level, 0)
    return 0


def _drop_extra_data(out):
    note = {"note": f"extra data removed: results.json must stay under {TOTAL_CAP:,} bytes"}
    for t in out.get("tests") or []:
        if isinstance(t, dict) and "extra_data" in t:
            t["extra_data"] = dict(note)
    if isinstance(out.get("extra_data"), dict):
        kept = {k: v for k, v in out["extra_data"].items() if _size(v) <= 1024}
        if len(kept) < len(out["extra_data"]):
            kept["note"] = note["note"]
        out["extra_data"] = kept


_BAD_CHARS = re.compile("[\x00\ud800-\udfff]")


def clean_text(text):
    """``text`` with NUL characters and lone surrogates replaced by U+FFFD (same length)."""
    return _BAD_CHARS.sub("\ufffd", text)


def jsonable(obj):
    """A copy of ``obj`` that strict JSON can hold: NaN and infinities become the strings "nan",
    "inf" and "-inf", numbers of other types (numpy scalars) become int or float, strings and keys
    are cleaned (``clean_text``), tuples become lists.  Anything else is left for json to refuse."""
    if obj is None or isinstance(obj, (bool, int)):
        return obj
    if isinstance(obj, float) or (isinstance(obj, numbers.Real) and not isinstance(obj, numbers.Integral)):
        value = float(obj)
        if math.isfinite(value):
            return value
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(obj, numbers.Integral):
        return int(obj)
    if isinstance(obj, str):
        return clean_text(obj)
    if isinstance(obj, dict):
        return {clean_text(k) if isinstance(k, str) else k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    return obj


def atomic_write(path, obj):
    """Write ``bounded(obj)`` as strict JSON to ``path``: encode first, then a temporary file in the
    same folder, fsync, os.replace.  On any error the old file stays and no temporary file is left."""
    text = json.dumps(jsonable(bounded(obj)), indent=2, allow_nan=False)  # may raise: nothing written yet
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".results-", suffix=".json", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename itself durable; not every file system allows fsync on a folder
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def initial(config, message):
    return {
        "score": 0.0, "execution_time": 0, "output": message, "output_format": "text",
        "visibility": "visible", "stdout_visibility": "hidden", "tests": [],
        "extra_data": {"grader_version": VERSION, "config_hash": config["_hash"] if config else None},
    }


def _finite(value):
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def build(records, config, execution_time, output, leaderboard=None, extra=None):
    """results.json from the test records (dicts with name, number, score, max_score, status, output,
    visibility, tags and optionally extra_data and output_format), capped by ``bounded``.

    A score or max_score that is not a finite number (NaN, inf) cannot be written where the
    specification wants a number: such a test gets 0 points (and a max_score of 0 if that was the
    broken one), the status "failed" and a note at the end of its output.
    """
    tests = []
    for r in records:
        score, max_score, text, status = _finite(r["score"]), _finite(r["max_score"]), r["output"], r["status"]
        broken = [k for k, v in (("score", score), ("max_score", max_score)) if v is None]
        if broken:
            status = "failed"
            note = (f"The grader could not compute a finite {' or '.join(broken)} for this test "
                    f"(got {', '.join(repr(r[k]) for k in broken)}), so it counts as 0 points.")
            text = f"{text}\n{note}" if text else note
            score = 0.0
            max_score = 0.0 if max_score is None else max_score
        test = {
            "name": r["name"], "number": r["number"], "score": round(score, 4),
            "max_score": max_score, "status": status, "output": text,
            "visibility": r["visibility"], "tags": list(r["tags"]),
        }
        if r.get("output_format") is not None:
            test["output_format"] = r["output_format"]
        if isinstance(r.get("extra_data"), dict):
            test["extra_data"] = dict(r["extra_data"])
        tests.append(test)
    seconds = _finite(execution_time)
    result = {
        "score": round(sum(t["score"] for t in tests), 4),
        "execution_time": int(round(seconds)) if seconds is not None and seconds >= 0 else 0,
        "output": output, "output_format": "text",
        "visibility": "visible", "stdout_visibility": "hidden",
        "tests": tests,
        "extra_data": dict({"grader_version": VERSION, "config_hash": config["_hash"],
                            "config_overrides": config.get("_overrides", [])}, **(extra or {})),
    }
    if leaderboard:
        result["leaderboard"] = leaderboard
    return bounded(result)


def _check_number(obj, key, where, problems):
    if key in obj and (not _is_number(obj[key]) or not math.isfinite(obj[key])):
        problems.append(f"{where}{key} must be a finite number")


def _check_enum(obj, key, allowed, where, problems):
    if key in obj and obj[key] not in allowed:
        problems.append(f"{where}{key} must be one of {', '.join(allowed)}")


def _check_type(obj, key, kind, name, where, problems):
    if key in obj and not isinstance(obj[key], kind):
        problems.append(f"{where}{key} must be {name}")


def validate(result, own_rules=True):
    """Problems with ``result`` (empty list if none).

    Always checked, from Gradescope's specification: only the allowed keys, the type of every
    value, the allowed values of formats, visibilities, statuses and leaderboard orders, a
    top-level score or else a score or status on every test, and numbers that JSON can hold.
    With ``own_rules`` (the default) also what our own build() guarantees: the fields it always
    writes (see OWN_TOP_KEYS and OWN_TEST_KEYS; the specification would let a test with a status
    leave out its score), unique test numbers, scores within 0..max_score and a top-level score
    equal to the sum of the tests' scores (the specification would let it override that sum).
    """
    if not isinstance(result, dict):
        return ["results.json must hold a JSON object"]
    problems = []
    _check_top(result, own_rules, problems)
    if "tests" not in result:
        if "score" not in result:
            problems.append("results.json needs a top-level score or a list of tests")
        return problems
    tests = result["tests"]
    if not isinstance(tests, list):
        return problems + ["tests must be a list"]
    numbers_seen = set()
    for i, t in enumerate(tests):
        _check_test(t, i, "score" in result, own_rules, numbers_seen, problems)
    if own_rules and _is_number(result.get("score")) and all(isinstance(t, dict) for t in tests):
        total = sum(t["score"] for t in tests if _is_number(t.get("score")))
        if not abs(total - result["score"]) <= 1e-6:
            problems.append("score is not the sum of the tests' scores")
    return problems


def _check_top(result, own_rules, problems):
    """validate's checks of the top-level fields other than tests."""
    for key in sorted(set(result) - TOP_KEYS, key=str):
        problems.append(f"unknown top-level key {key!r}")
    if own_rules:
        for key in sorted(OWN_TOP_KEYS - set(result)):
            problems.append(f"{key} is missing")
    _check_number(result, "score", "", problems)
    if "execution_time" in result:
        seconds = result["execution_time"]
        if not (isinstance(seconds, int) and not isinstance(seconds, bool) and seconds >= 0):
            problems.append("execution_time must be a whole number of seconds")
    _check_type(result, "output", str, "a string", "", problems)
    for key in ("output_format", "test_output_format", "test_name_format"):
        _check_enum(result, key, FORMATS, "", problems)
    for key in ("visibility", "stdout_visibility"):
        _check_enum(result, key, VISIBILITIES, "", problems)
    _check_type(result, "extra_data", dict, "an object", "", problems)
    _check_leaderboard(result, problems)


def _check_test(t, i, top_score, own_rules, numbers_seen, problems):
    """validate's checks of tests[i] (``t``); ``top_score``: the results have a top-level score;
    ``numbers_seen``: the numbers of the tests before it (this one's is added)."""
    where = f"tests[{i}]."
    if not isinstance(t, dict):
        problems.append(f"tests[{i}] must be an object")
        return
    for key in sorted(set(t) - TEST_KEYS, key=str):
        problems.append(f"tests[{i}] has unknown key {key!r}")
    if own_rules and OWN_TEST_KEYS - set(t):
        problems.append(f"tests[{i}] lacks {sorted(OWN_TEST_KEYS - set(t))}")
    if not top_score and "score" not in t and "status" not in t:
        problems.append(f"tests[{i}] needs a score or a status when there is no top-level score")
    for key in ("score", "max_score"):
        _check_number(t, key, where, problems)
    _check_enum(t, "status", STATUSES, where, problems)
    for key in ("name", "number", "output"):
        _check_type(t, key, str, "a string", where, problems)
    for key in ("name_format", "output_format"):
        _check_enum(t, key, FORMATS, where, problems)
    _check_enum(t, "visibility", VISIBILITIES, where, problems)
    if "tags" in t and not (isinstance(t["tags"], list) and all(isinstance(x, str) for x in t["tags"])):
        problems.append(f"{where}tags must be a list of strings")
    _check_type(t, "extra_data", dict, "an object", where, problems)
    if not own_rules:
        return
    if "number" in t:
        seen = t["number"] if isinstance(t["number"], str) else repr(t["number"])
        if seen in numbers_seen:
            problems.append(f"{where}number {t['number']!r} is not unique")
        numbers_seen.add(seen)
    score, max_score = t.get("score"), t.get("max_score")
    if _is_number(score) and _is_number(max_score) and not 0 <= score <= max_score:
        problems.append(f"{where}score is outside 0..max_score")


def _check_leaderboard(result, problems):
    if "leaderboard" not in result:
        return
    board = result["leaderboard"]
    if not isinstance(board, list):
        problems.append("leaderboard must be a list")
        return
    for i, entry in enumerate(board):
        where = f"leaderboard[{i}]."
        if not isinstance(entry, dict):
            problems.append(f"leaderboard[{i}] must be an object")
            continue
        for key in sorted(set(entry) - LEADERBOARD_KEYS, key=str):
            problems.append(f"leaderboard[{i}] has unknown key {key!r}")
        if not isinstance(entry.get("name"), str):
            problems.append(f"{where}name must be a string")
        value = entry.get("value")
        if "value" not in entry or not (isinstance(value, str) or _is_number(value)):
            problems.append(f"{where}value must be a number or a string")
        elif _is_number(value) and not math.isfinite(value):
            problems.append(f"{where}value is {value!r}, which JSON cannot hold")
        _check_enum(entry, "order", ORDERS, where, problems)
