"""Per-class feedback on the accuracy tests: the table, the confusions, extra_data, grade-all's columns."""
import csv
import importlib.util
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix

from conftest import PYTHON, ROOT, SOLUTION
from test_autograder import copy_reference, grade

sys.path.insert(0, os.path.join(ROOT, "autograder"))
from grader import checks, config as config_mod, results as results_mod  # noqa: E402

ROW = re.compile(r"^\| (?P<name>[^|]+?) \| (?P<correct>\d+) of (?P<total>\d+) \| (?P<acc>[\d.]+|-) \|$", re.M)


def load_utils():
    spec = importlib.util.spec_from_file_location("feedback_utils", os.path.join(ROOT, "handout", "utils.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_class_names_are_the_handouts():
    assert checks.CLASS_NAMES == tuple(load_utils().CLASS_NAMES)


def test_confusion_and_report_agree_with_scikit_learn():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 10, 3000)
    predicted = np.where(rng.random(3000) < 0.7, labels, rng.integers(0, 10, 3000))
    predicted[labels == 6] = np.where(rng.random((labels == 6).sum()) < 0.5, 0, 6)   # Shirt often as T-shirt/top
    expected = confusion_matrix(labels, predicted, labels=list(range(10)))
    assert np.array_equal(checks.confusion(predicted, labels), expected)
    text, extra = checks.class_report(predicted, labels, confusions=3)
    assert extra["confusion_matrix"] == expected.tolist()
    assert extra["class_correct"] == np.diag(expected).tolist()
    assert extra["class_total"] == expected.sum(axis=1).tolist()
    rows = ROW.findall(text)
    assert [r[0] for r in rows] == list(checks.CLASS_NAMES)
    for (name, correct, total, acc), i in zip(rows, range(10)):
        assert (int(correct), int(total)) == (expected[i, i], expected[i].sum())
        assert float(acc) == pytest.approx(expected[i, i] / expected[i].sum(), abs=5e-4)
    off = expected.copy()
    np.fill_diagonal(off, 0)
    top = sorted(((off[i, j], i, j) for i in range(10) for j in range(10)), key=lambda x: (-x[0], x[1], x[2]))[:3]
    pairs = text.split("Most frequent confusions: ")[1].rstrip(".").split("; ")
    named = [re.fullmatch(r"(.+) predicted as (.+): (\d+) of (\d+)", p).groups() for p in pairs]
    assert named == [(checks.CLASS_NAMES[i], checks.CLASS_NAMES[j], str(n), str(expected[i].sum())) for n, i, j in top]
    assert named[0][:2] == ("Shirt", "T-shirt/top")


def test_out_of_range_predictions_count_as_wrong_and_nothing_else():
    labels = np.array([0, 1, 2, 3])
    predicted = np.array([0, 11, -1, 3])
    matrix = checks.confusion(predicted, labels)
    assert matrix.sum() == 2 and matrix[0, 0] == matrix[3, 3] == 1
    _, extra = checks.class_report(predicted, labels)
    assert extra["class_total"][:4] == [1, 1, 1, 1] and extra["class_correct"][:4] == [1, 0, 0, 1]
    text, _ = checks.class_report(np.array([1, 1]), np.array([1, 1]))
    assert "Most frequent confusions" not in text           # nothing confused, nothing named


@pytest.mark.parametrize("setting, message", [("feedback.per_class='yes'", "feedback.per_class must be true or false"),
                                              ("feedback.confusions=-1", "feedback.confusions must be a whole number")])
def test_bad_feedback_settings_are_refused_by_name(setting, message):
    with pytest.raises(config_mod.ConfigError, match=re.escape(message)):
        config_mod.load(overrides=[setting])


def accuracy_test(result, file):
    [test] = [t for t in result["tests"] if t["tags"][0] == file and t["name"].endswith("(grader-computed)")]
    return test


def check_rendered(test):
    """The test's markdown: its table and its extra_data say the same, and the format is valid."""
    assert test["output_format"] == "md" and test["output_format"] in results_mod.FORMATS
    extra = test["extra_data"]
    rows = ROW.findall(test["output"])
    assert [r[0] for r in rows] == extra["class_names"] == list(checks.CLASS_NAMES)
    assert [int(r[1]) for r in rows] == extra["class_correct"]
    assert [int(r[2]) for r in rows] == extra["class_total"]
    matrix = np.array(extra["confusion_matrix"])
    assert matrix.shape == (10, 10) and matrix.dtype.kind == "i"
    assert np.diag(matrix).tolist() == extra["class_correct"]
    return matrix


def test_fashionmnist_accuracy_test_reports_the_confusions_of_the_predictions_it_collected(tmp_path):
    """A predict() with known answers: results.json's matrix is sklearn's on the same predictions."""
    sub = copy_reference(tmp_path / "sub")
    source = (sub / "fashionmnist.py").read_text()
    marker = "    model.eval()\n    with torch.no_grad():\n        labels = torch.cat("
    assert marker in source
    (sub / "fashionmnist.py").write_text(source.replace(
        marker, "    return (torch.arange(X.shape[0]) * 7 + 3) % 10\n" + marker, 1))
    result = grade(sub, tmp_path / "r.json", "--files", "fashionmnist", "--tests", "private",
                   "-k", "test_accuracy_threshold")
    test = accuracy_test(result, "fashionmnist")
    config = config_mod.load()
    m, chunk = config["budget"]["fashionmnist"]["test_images"], config["budget"]["fashionmnist"]["chunk"]
    predicted = np.concatenate([(np.arange(min(chunk, m - s)) * 7 + 3) % 10 for s in range(0, m, chunk)])
    y_test = load_utils().load_mnist_f(data_dir=None, allow_download=False)[3][:m]
    expected = confusion_matrix(np.asarray(y_test), predicted, labels=list(range(10)))
    assert test["status"] == "failed" and "below the threshold" in test["output"]   # the table follows a failure too
    assert check_rendered(test).tolist() == expected.tolist()
    assert test["output"].index("below the threshold") < test["output"].index("| class | correct | accuracy |")


def test_numpy_accuracy_test_shows_the_table_without_asking_the_student_anything_more(tmp_path):
    """Feedback on or off, the test sends the worker the same number of requests and gets the same accuracy."""
    sub = copy_reference(tmp_path / "sub")
    runs = {}
    for per_class in ("true", "false"):
        result = grade(sub, tmp_path / f"{per_class}.json", "--files", "numpy_ann", "--tests", "private",
                       "-k", "test_accuracy_threshold", "--set", "budget.numpy_ann.train_images=20000",
                       "--set", f"feedback.per_class={per_class}")
        runs[per_class] = accuracy_test(result, "numpy_ann")
    on, off = runs["true"], runs["false"]
    assert on["status"] == off["status"] == "passed"
    matrix = check_rendered(on)
    accuracy = float(re.search(r"accuracy (0\.\d+), threshold", on["output"]).group(1))
    assert np.trace(matrix) / matrix.sum() == pytest.approx(accuracy, abs=1e-4)
    assert on["output"].index("threshold") < on["output"].index("| class |")
    assert "output_format" not in off and "confusion_matrix" not in off["extra_data"] and "| class |" not in off["output"]
    assert on["extra_data"]["worker_requests"] == off["extra_data"]["worker_requests"] > 0


def test_grade_all_adds_per_class_columns_and_names_the_cohorts_worst_class(tmp_path):
    spec = importlib.util.spec_from_file_location("grade_all_fb", os.path.join(ROOT, "tools", "grade_all.py"))
    grade_all = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(grade_all)
    rng = np.random.default_rng(3)
    results, rows, pooled = {}, [], np.zeros((2, 10), dtype=int)
    for sid in ("s1", "s2", "s3"):
        total = rng.integers(80, 120, 10)
        correct = (total * rng.uniform(0.6, 0.95, 10)).astype(int)
        correct[6] = total[6] // 3 if sid != "s3" else total[6]                  # Shirt, except for s3
        pooled += [correct, total]
        results[sid] = {"score": 4.0, "tests": [
            {"name": "NumpyANN reaches the accuracy threshold", "number": "1.12", "score": 4.0, "max_score": 4.0,
             "status": "passed", "output": "", "tags": ["numpy_ann", "private"],
             "extra_data": {"class_correct": correct.tolist(), "class_total": total.tolist()}}]}
        rows.append({"id": sid, "names": [sid], "emails": [f"{sid}@x"], "status": "graded", "wall": 1.0})
    csv_path, summary = grade_all.write_reports(str(tmp_path), "t", rows, results)
    with open(csv_path, newline="") as fh:
        table = list(csv.DictReader(fh))
    for row, sid in zip(table, ("s1", "s2", "s3")):
        extra = results[sid]["tests"][0]["extra_data"]
        for name, c, t in zip(checks.CLASS_NAMES, extra["class_correct"], extra["class_total"]):
            assert float(row[f"1.12 {name} accuracy"]) == pytest.approx(c / t, abs=1e-4)
    accuracy = pooled[0] / pooled[1]
    worst = checks.CLASS_NAMES[int(np.argmin(accuracy))]
    assert worst == "Shirt"
    assert f"the class the cohort gets most wrong: {worst} (accuracy {accuracy.min():.3f}" in summary

    # per-class columns are information: a regrade that only moves them changes no score
    results["s1"]["tests"][0]["extra_data"]["class_correct"][0] -= 1
    other_csv, _ = grade_all.write_reports(str(tmp_path), "u", rows, results)
    compare = subprocess.run([PYTHON, os.path.join(ROOT, "tools", "compare.py"), csv_path, other_csv],
                             capture_output=True, text=True, timeout=60)
    assert compare.returncode == 0 and compare.stdout.strip() == "no score changed", compare.stdout


def test_figure_messages_say_which_figure_is_missing_or_unreadable(tmp_path):
    """Each of the three figures fashionmnist.py hands in: the message names the file and what it must show."""
    spec = importlib.util.spec_from_file_location(
        "fm_private", os.path.join(ROOT, "autograder", "tests", "private", "test_fashionmnist_private.py"))
    private = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(private)
    assert set(private.FIGURES) == {"fmnist_training_loss.png", "fmnist_misclassified.png", "fmnist_correct.png"}
    good = tmp_path / "good.png"
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig = plt.figure(figsize=(1, 1))
    fig.savefig(good)
    plt.close(fig)
    data = good.read_bytes()
    cases = {"missing": (None, "was not found: upload it"), "not a png": (b"GIF89a" + data[6:], "cannot be read as a PNG"),
             "cut short": (data[: len(data) // 2], "is an incomplete PNG image")}
    limits = config_mod.load()["size_limits"]
    for name, shows in private.FIGURES.items():
        assert checks.check_png(str(good), name, limits, shows) == (100, 100)
        for content, says in cases.values():
            path = None
            if content is not None:
                path = tmp_path / name
                path.write_bytes(content)
            with pytest.raises(checks.GradeFailure) as info:
                checks.check_png(str(path) if path else None, name, limits, shows, missing="upload it")
            assert str(info.value).startswith(f"{name} ({shows})") and says in str(info.value)
    assert "predicted and true class names" in private.FIGURES["fmnist_misclassified.png"]


def test_markdown_output_cannot_be_shaped_by_the_students_text():
    """In a markdown test's output, a message quoting the student's text is escaped; the grader's table is not."""
    from grader.feedback import Feedback
    table, _ = checks.class_report(np.array([0, 1]), np.array([0, 1]))
    feedback = Feedback(record=None)
    feedback.note("accuracy 0.5, threshold 0.8")
    feedback.trailer = table
    feedback.details("md", n=1)
    rec = {"output": "predict raised ValueError: <img src=x> [click](http://x)\n| fake | row |", "extra_data": {}}
    feedback.finish(rec)
    out = rec["output"]
    assert rec["output_format"] == "md" and rec["extra_data"] == {"n": 1}
    assert "<img" not in out and "&lt;img src=x&gt;" in out and "\\[click\\](http://x)" in out
    assert "  \n\\| fake \\| row \\|" in out                  # the student's line stays a line, not a table row
    assert out.endswith(table) and out.startswith("accuracy 0.5, threshold 0.8\n\npredict raised")
