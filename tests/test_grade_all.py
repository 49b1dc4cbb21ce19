"""make grade-all on a small Gradescope export; CSV, summary, resume, compare."""
import csv
import json
import os
import shutil
import subprocess

from conftest import HANDOUT, PYTHON, ROOT, SOLUTION

METADATA = """\
submission_1:
  :submitters:
  - :name: Ada Lovelace
    :email: ada@example.edu
    :sid: '1'
  :created_at: 2026-11-01 10:00:00
submission_2:
  :submitters:
  - :name: Alan Turing
    :email: alan@example.edu
  - :name: Grace Hopper
    :email: grace@example.edu
submission_3:
  :submitters:
  - :name: C Crash
    :email: c@example.edu
submission_4:
  :submitters:
  - :name: N None
    :email: n@example.edu
submission_5:
  :submitters:
  - :name: H Hang
    :email: h@example.edu
"""


def workers():
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return sum("runtime/worker.py" in line for line in out.splitlines())


def grade_all(export, out, *extra):
    cmd = [PYTHON, os.path.join(ROOT, "tools", "grade_all.py"), str(export), "--out", str(out), "--jobs", "2",
           "--timeout", "25", "--grader-arg=--files=numpy_ann", "--grader-arg=--tests=public", *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def newest_csv(out):
    name = sorted(f for f in os.listdir(out) if f.endswith(".csv"))[-1]
    with open(out / name, newline="") as fh:
        return out / name, {r["submission_id"]: r for r in csv.DictReader(fh)}


def test_grade_all_export_resume_and_compare(tmp_path):
    export = tmp_path / "export"
    for i in range(1, 6):
        (export / f"submission_{i}").mkdir(parents=True)
    shutil.copy(os.path.join(SOLUTION, "numpy_ann.py"), export / "submission_1" / "numpy_ann.py")
    shutil.copy(os.path.join(HANDOUT, "numpy_ann.py"), export / "submission_2" / "numpy_ann.py")
    (export / "submission_3" / "numpy_ann.py").write_text("import os\nos._exit(3)\n")
    (export / "submission_4" / "README.txt").write_text("forgot the files")
    (export / "submission_5" / "numpy_ann.py").write_text("import time\nwhile True:\n    time.sleep(1)\n")
    (export / "submission_metadata.yml").write_text(METADATA)
    os.chmod(tmp_path, 0o755)
    out = tmp_path / "grades"
    before = workers()

    proc = grade_all(export, out)
    first_csv, rows = newest_csv(out)
    status = {sid: r["status"] for sid, r in rows.items()}
    assert status == {"submission_1": "graded", "submission_2": "graded", "submission_3": "graded",
                      "submission_4": "no-files", "submission_5": "timeout"}
    assert workers() <= before                      # the hung submission's worker was killed
    reference = json.loads((out / "results" / "submission_1.json").read_text())
    full = sum(t["max_score"] for t in reference["tests"])
    assert full > 0 and float(rows["submission_1"]["total"]) == full
    assert float(rows["submission_2"]["total"]) == 0 and float(rows["submission_3"]["total"]) == 0
    assert rows["submission_2"]["names"] == "Alan Turing; Grace Hopper"
    assert rows["submission_1"]["emails"] == "ada@example.edu"
    test_columns = [c for c in rows["submission_1"] if c.startswith("1.")]
    graded_tests = [t for t in reference["tests"] if not t["name"].startswith("Instructor report")]
    assert len(test_columns) == len(graded_tests) == len(reference["tests"]) - 1
    assert rows["submission_1"]["flags"] == "" and "exited with code 3" in rows["submission_3"]["flags"]
    assert sum(float(rows["submission_1"][c]) for c in test_columns) == full
    assert rows["submission_1"]["grader_version"] and float(rows["submission_1"]["wall_time_s"]) > 0
    summary = next(f for f in os.listdir(out) if f.startswith("summary-"))
    text = (out / summary).read_text()
    assert "graded 3, timeout 1, crashed 0, no-files 1" in text and "slowest submissions" in text
    assert any(f.startswith("histogram-") and f.endswith(".png") for f in os.listdir(out))
    assert "submission_5: timeout" in proc.stdout

    # a fixed submission: only it (and the timed-out one) is graded again
    shutil.copy(os.path.join(SOLUTION, "numpy_ann.py"), export / "submission_2" / "numpy_ann.py")
    proc = grade_all(export, out)
    counts = [line for line in proc.stdout.splitlines() if "graded now" in line]
    assert counts and counts[0].startswith("2 graded now, 3 skipped"), counts
    second_csv, rows = newest_csv(out)
    assert second_csv != first_csv and first_csv.exists()
    assert float(rows["submission_2"]["total"]) == full

    compare = subprocess.run([PYTHON, os.path.join(ROOT, "tools", "compare.py"), str(first_csv), str(second_csv)],
                             capture_output=True, text=True)
    assert compare.returncode == 0
    assert "1 submission(s) changed" in compare.stdout
    assert f"submission_2: total 0 -> {full:g} +{full:g}" in compare.stdout
