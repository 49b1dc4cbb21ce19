"""The cohort report (tools/report.py) on a small synthetic grade-all export, looked at in headless Chromium;
its bad-input messages; the similarity check (tools/similarity.py) against the handout."""
import csv
import html
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

import pytest

from conftest import HANDOUT, PYTHON, ROOT, SOLUTION
import report_fixtures as fx

sys.path.insert(0, os.path.join(ROOT, "tools"))
sys.path.insert(0, os.path.join(ROOT, "autograder"))
import grade_all  # noqa: E402
import report  # noqa: E402
import similarity  # noqa: E402
from grader import config as config_mod  # noqa: E402
from grader.assignment import FILES  # noqa: E402

STEMS = [f.stem for f in FILES]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOT = os.path.join(ROOT, "build", "report-screenshot.png")
SCRIPT = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """Six submissions of every status: 1 the reference, 2 a disguised copy of it, 3 written independently and
    flagged, 4 (timeout) and 6 (crashed) the untouched handout, 5 without files; graded, then reported by
    grade_all.write_reports as a grade-all run does."""
    base = tmp_path_factory.mktemp("cohort")
    export, out = base / "export", base / "grades"
    thresholds = config_mod.load()["thresholds"]
    above = {s: min(0.99, thresholds[s] + 0.05) for s in STEMS}
    sources = {"submission_1": fx.read(SOLUTION, "numpy_ann.py"), "submission_2": fx.disguised_copy("numpy_ann.py"),
               "submission_3": fx.independent_numpy_ann(), "submission_4": fx.read(HANDOUT, "numpy_ann.py"),
               "submission_6": fx.read(HANDOUT, "numpy_ann.py")}
    for i in range(1, 7):
        (export / f"submission_{i}").mkdir(parents=True)
    for sid, text in sources.items():
        (export / sid / "numpy_ann.py").write_text(text)
    flags = "numpy_ann: refused: open('/etc/shadow')"
    results = {
        "submission_1": fx.result(STEMS, thresholds, above),
        "submission_2": fx.result(STEMS, thresholds, dict(above, numpy_ann=thresholds["numpy_ann"] - 0.1),
                                  failing=["numpy_ann"], messages={"numpy_ann": f"shape (5, 3), expected (5, 2) {SCRIPT}"}),
        "submission_3": fx.result(STEMS, thresholds, above, failing=["numpy_ann", "pytorch_cnn"], flags=flags,
                                  messages={"numpy_ann": f"shape (7, 3), expected (7, 2) {SCRIPT}",
                                            "pytorch_cnn": "forward returned None"}),
    }
    states = {"submission_1": ("graded", ""), "submission_2": ("graded", ""), "submission_3": ("graded", ""),
              "submission_4": ("timeout", "grading took longer than 25 s"),
              "submission_5": ("no-files", "none of the graded files was found"),
              "submission_6": ("crashed", "the grader exited with code 3")}
    (out / "results").mkdir(parents=True)
    for sid, res in results.items():
        (out / "results" / f"{sid}.json").write_text(json.dumps(res))
    for sid, (status, detail) in states.items():
        (out / "results" / f"{sid}.state.json").write_text(json.dumps({"status": status, "detail": detail}))
    rows = [dict(id=sid, status=status, detail=detail, wall=10.0 + i, names=[f"Student {i}"],
                 emails=[f"s{i}@example.edu"]) for i, (sid, (status, detail)) in enumerate(states.items(), 1)]
    csv_path, summary = grade_all.write_reports(str(out), "20261204-100000-000000", rows,
                                                {sid: results.get(sid) for sid in states}, str(export))
    page = out / "report-20261204-100000-000000.html"
    assert page.exists(), summary
    with open(csv_path, newline="") as fh:
        table = list(csv.DictReader(fh))
    return {"csv": csv_path, "page": page, "table": table, "results": results, "flags": flags, "export": export,
            "thresholds": thresholds, "out": out}


def chromium(*args, timeout=90):
    """Run headless Chromium with a fresh profile; returns its stdout."""
    if not CHROMIUM:
        pytest.skip("chromium is not installed (make setup installs the Debian package chromium as root with "
                    "apt-get; install it by hand elsewhere)")
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        proc = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                               "--no-first-run", "--disable-background-networking", "--disable-component-update",
                               "--disable-sync", f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def text_of(dom, element_id):
    found = re.search(rf'id="{re.escape(element_id)}"[^>]*>(.*?)<', dom, re.S)
    assert found, f"no element with id {element_id}"
    return html.unescape(found.group(1)).strip()


def row_of(dom, attribute, value):
    found = re.search(rf'<tr {attribute}="{re.escape(html.escape(value))}"[^>]*>(.*?)(?=<tr data-|</section>)', dom,
                      re.S)
    assert found, f"no row with {attribute}={value}"
    return found.group(1)


def test_the_report_as_a_browser_shows_it(cohort):
    dom = chromium("--dump-dom", cohort["page"].as_uri())
    for section in ("distribution", "tests", "files", "classes", "attention", "changes", "similarity", "provenance"):
        assert f'<section id="{section}">' in dom, section
    table = cohort["table"]
    totals = [float(r["total"]) for r in table if r["status"] == "graded"]
    assert text_of(dom, "mean") == f"{statistics.mean(totals):.2f}"
    assert text_of(dom, "median") == f"{statistics.median(totals):.2f}"
    for status in grade_all.STATUSES:
        assert text_of(dom, f"count-{status}") == str(sum(r["status"] == status for r in table))
    # a pass rate, from the CSV's column of that test
    name = "numpy_ann: forward has the right shape"
    column = next(c for c in table[0] if c.endswith(" " + name))
    scores = [float(r[column]) for r in table if r["status"] == "graded"]
    row = row_of(dom, "data-test", name)
    assert f"{100 * sum(s > 0 for s in scores) / len(scores):.1f}%" in row
    assert "2 failures, 1 distinct message" in row and "shape (#, #), expected (#, #)" in row
    # worst first: that test (1 of 3 passed) comes before every test that all passed
    assert dom.index(name) < dom.index("numpy_ann: accuracy threshold")
    # the flagged submission: its reason and a link to its results
    flagged = row_of(dom, "data-id", "submission_3")
    assert html.escape(cohort["flags"], quote=False) in flagged
    assert 'href="results/submission_3.json"' in flagged
    assert "grading took longer than 25 s" in row_of(dom, "data-id", "submission_4")
    assert "none of the graded files" in row_of(dom, "data-id", "submission_5")
    assert "submission_1" not in re.search(r'<section id="attention">.*?</section>', dom, re.S).group(0)
    # per file against the config's threshold; per class: Shirt is the worst
    for stem, threshold in cohort["thresholds"].items():
        assert f"<td>{stem}</td><td class=\"num\">{threshold:g}</td>" in row_of(dom, "data-file", stem)
    assert re.search(r"<td>Shirt</td><td class=\"num worst\">", dom)
    assert "Shirt</td><td>T-shirt/top" in dom
    # the planted pair, and not the independent one or the two untouched handouts
    similar = re.findall(r'<details class="similar" data-file="([^"]+)" data-a="([^"]+)" data-b="([^"]+)" open', dom)
    assert similar == [("numpy_ann.py", "submission_1", "submission_2")]
    assert text_of(dom, "similarity-threshold") == f"{similarity.THRESHOLD:g}"
    assert "<mark>" in dom
    assert text_of(dom, "grader-version") == "1.0.0" and text_of(dom, "config-hash") == "feedfacecafe0001"
    # student text is text: the message's <script> is shown, never run or parsed
    assert "<script" not in dom and html.escape(report.normalise(SCRIPT), quote=False) in dom
    os.makedirs(os.path.dirname(SCREENSHOT), exist_ok=True)
    chromium(f"--screenshot={SCREENSHOT}", "--window-size=1280,4000", "--hide-scrollbars", cohort["page"].as_uri())
    assert os.path.getsize(SCREENSHOT) > 10000


def test_the_report_is_one_self_contained_file(cohort):
    page = cohort["page"].read_text()
    sources = re.findall(r"""\bsrc=['"]([^'"]*)""", page)
    assert len(sources) >= 2 and all(re.fullmatch("data:image/png;base64,[A-Za-z0-9+/]+=*", s) for s in sources)
    for source in sources:
        page = page.replace(source, "")
    assert not re.search(r"https?:|//", page, re.I)
    assert not re.search(r"<(script|link|iframe|object|embed)\b|url\(|@import", page, re.I)
    links = re.findall(r"""\bhref=['"]([^'"]*)""", page)
    assert links and all(re.fullmatch(r"results/submission_\d\.json", link) for link in links)
    assert not [f for f in os.listdir(cohort["out"]) if f.startswith(".tmp-")]     # written atomically


def test_an_earlier_run_shows_what_changed(cohort, tmp_path):
    old = tmp_path / "grades-old.csv"
    rows = [dict(r) for r in cohort["table"]]
    column = next(c for c in rows[0] if c.endswith(" numpy_ann: accuracy threshold"))
    row = next(r for r in rows if r["submission_id"] == "submission_1")
    row[column], row["total"] = "0.0", str(float(row["total"]) - 4)
    with open(old, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    out = tmp_path / "report.html"
    assert report.main([str(cohort["csv"]), "--old", str(old), "--out", str(out)]) == 0
    changes = re.search(r'<section id="changes">.*?</section>', out.read_text().replace("'", '"'), re.S).group(0)
    assert "1 submission(s) changed" in changes
    assert re.search(r'data-id="submission_1">.*<td class="num">\+4</td>', changes)
    assert html.escape(f"{column}: 0 -> 4") in changes


@pytest.mark.parametrize("case", ["missing", "not-grade-all", "make-without-grades", "make-missing"])
def test_bad_grades_get_exit_2_and_a_message_naming_the_file(tmp_path, case):
    wrong = tmp_path / "scores.csv"
    wrong.write_text("student,score\nada,3\n")
    missing = tmp_path / "nothing.csv"
    command, expected = {
        "missing": ([PYTHON, "tools/report.py", str(missing)], f"{missing}: no such file"),
        "not-grade-all": ([PYTHON, "tools/report.py", str(wrong)], f"{wrong}: not a grade-all CSV"),
        "make-without-grades": (["make", "-s", "report"], "report: set GRADES=<csv>"),
        "make-missing": (["make", "-s", "report", f"GRADES={missing}"], f"{missing}: no such file"),
    }[case]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    said = proc.stdout + proc.stderr
    assert expected in said and "Traceback" not in said


def test_similarity_flags_the_disguised_copy_and_not_independent_work(tmp_path):
    handout = fx.read(HANDOUT, "numpy_ann.py")
    sources = {"reference": {"numpy_ann.py": fx.read(SOLUTION, "numpy_ann.py")},
               "copy": {"numpy_ann.py": fx.disguised_copy("numpy_ann.py")},
               "independent": {"numpy_ann.py": fx.independent_numpy_ann()},
               "stub_a": {"numpy_ann.py": handout}, "stub_b": {"numpy_ann.py": handout}}
    stats = {}
    pairs = similarity.similar_pairs(sources, stats=stats)
    assert [(p["file"], p["a"], p["b"]) for p in pairs] == [("numpy_ann.py", "copy", "reference")]
    assert stats["pairs"] == 10
    # the side-by-side view marks the matches and escapes the code
    text = f"a = 1\nb = '{SCRIPT}'\n" + "c = 2\n" * 9
    marked = similarity.side_by_side(text, [[text.index("b")], [text.index("b") + 8]], context=1)
    assert "<mark>b = &#x27;&lt;sc</mark>" in marked and "<script" not in marked
    assert "c = 2" in marked and "... 9 line(s) without a match ..." in marked   # 8 and the empty last
    # the untouched handouts are identical: only leaving the handout out keeps them apart
    everything = similarity.similar_pairs(sources, threshold=0.0, handout=str(tmp_path))
    assert ("stub_a", "stub_b") in [(p["a"], p["b"]) for p in everything if p["score"] >= similarity.THRESHOLD]


def test_many_similar_pairs_are_listed_and_only_the_first_shown_side_by_side(cohort, tmp_path, monkeypatch):
    monkeypatch.setattr(report, "SHOWN", 1)
    grades = tmp_path / "grades"
    shutil.copytree(cohort["out"], grades)
    (grades / "results" / "submission_6.json").write_text("[1, 2]")      # not a results.json: named
    out = tmp_path / "report.html"
    assert report.main([str(grades / os.path.basename(cohort["csv"])), "--submissions", str(cohort["export"]), "--similarity-threshold", "0",
                        "--out", str(out)]) == 0
    page = out.read_text()
    assert page.count("class='similar'") == 1 and page.count("<mark>") > 0
    assert page.count("class='similar-more'") == 2            # three pairs of numpy_ann.py share some code
    assert html.escape("submission_6.json: not a grader's results file, left out") in page
