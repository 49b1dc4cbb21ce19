"""The instructor's view of a cohort: one self-contained HTML file from a grade-all run.

    python tools/report.py GRADES.csv [--old OLD.csv] [--submissions EXPORT] [--similarity-threshold 0.8]
                           [--out FILE]

GRADES is a grades-<time>.csv that tools/grade_all.py wrote; the results/<id>.json (and
<id>.state.json) files next to it give each test's output, tags and extra_data.  The report
(default: report-<time>.html next to the CSV) has the score distribution, the pass rate of each test
with its most common failure messages, the accuracy per file against its threshold, the accuracy per
Fashion-MNIST class and the most frequent confusions, the submissions that need a human, the changes
since an earlier run (--old, tools/compare.py), the pairs of submissions whose own code is most
similar (--submissions: the export the CSV was graded from; tools/similarity.py), and the grader
version, config hash and date.  Everything is in the one file: images are inline PNGs, no script,
no style sheet or font from elsewhere.  It holds names and e-mails: keep it under build/.

Exit 0 with the report's path; 2 with a message naming the file when an input is missing or wrong.
"""
import argparse
import base64
import csv
import datetime
import html
import io
import json
import os
import re
import statistics
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "autograder"))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import compare  # noqa: E402
import grade_all  # noqa: E402
import similarity  # noqa: E402
from grader import config as config_mod  # noqa: E402
from grader.checks import CLASS_NAMES  # noqa: E402
from grader.results import REPORT_NAME  # noqa: E402

REQUIRED = ("submission_id", "total", "status", "flags")   # columns every grade-all CSV has
MESSAGES = 5          # failure messages shown per test
CONFUSIONS = 8        # confusions shown per accuracy test
SHOWN = 50            # similar pairs shown side by side (the rest are listed)
OPEN = 3              # of those, open when the page opens
NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
e = html.escape


class ReportError(ValueError):
    pass


# -- reading ---------------------------------------------------------------------------------------------
def read_grades(path):
    """The rows of a grade-all CSV, checked: ReportError names the file and what to give instead."""
    hint = "give a build/grades/grades-<time>.csv that make grade-all wrote"
    if not os.path.isfile(path):
        raise ReportError(f"{path}: no such file; {hint}")
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ReportError(f"{path}: cannot read it as a CSV file ({exc}); {hint}") from None
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise ReportError(f"{path}: not a grade-all CSV (no {', '.join(missing)} column); {hint}")
    bad = [r["submission_id"] for r in rows if r["status"] not in grade_all.STATUSES]
    if bad:
        raise ReportError(f"{path}: not a grade-all CSV (unknown status in the row of {bad[0]}); {hint}")
    return header, rows


def read_results(folder, ids):
    """({id: results.json or None}, {id: state or None}, [problems]) from ``folder``/results/."""
    results, states, problems = {}, {}, []
    for sid in ids:
        for kind, store in (("json", results), ("state.json", states)):
            path = os.path.join(folder, "results", f"{sid}.{kind}")
            store[sid] = None
            if not os.path.exists(path):
                continue
            try:
                with open(path, encoding="utf-8") as fh:
                    store[sid] = json.load(fh)
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                problems.append(f"{path}: unreadable, left out ({exc})")
                continue
            if not isinstance(store[sid], dict) or (kind == "json" and not isinstance(store[sid].get("tests"), list)):
                problems.append(f"{path}: not a grader's {'results' if kind == 'json' else 'state'} file, left out")
                store[sid] = None
    return results, states, problems


def number(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


# -- what the report shows, as data -------------------------------------------------------------------------
def normalise(message):
    """A failure message's first line with every number replaced by '#', for grouping."""
    line = next((ln.strip() for ln in (message or "").splitlines() if ln.strip()), "(no message)")
    return NUMBER.sub("#", line)[:300]


def graded_tests(result):
    return [t for t in (result or {}).get("tests", []) if isinstance(t, dict) and isinstance(t.get("name"), str)
            and t["name"] != REPORT_NAME and isinstance(t.get("max_score", 0), (int, float))]


def test_table(rows, results):
    """Per test, over the graded submissions that have results: number, name, file, points, passed, graded,
    [(normalised message, count)] most common first; sorted worst pass rate first."""
    tests = {}
    for row in rows:
        if row["status"] != "graded":
            continue
        for t in graded_tests(results.get(row["submission_id"])):
            entry = tests.setdefault(t["name"], {"name": t["name"], "number": str(t.get("number", "")),
                                                 "file": (t.get("tags") or ["?"])[0], "points": t.get("max_score", 0),
                                                 "passed": 0, "graded": 0, "messages": {}})
            entry["graded"] += 1
            if t.get("status") == "passed":
                entry["passed"] += 1
            else:
                key = normalise(t.get("output"))
                entry["messages"][key] = entry["messages"].get(key, 0) + 1
    table = list(tests.values())
    for entry in table:
        entry["rate"] = entry["passed"] / entry["graded"]
        entry["messages"] = sorted(entry["messages"].items(), key=lambda kv: (-kv[1], kv[0]))
    return sorted(table, key=lambda t: (t["rate"], t["number"]))


def accuracy_tests(rows, results):
    """{file stem: {"points": p, "accuracies": [...], "correct": [...], "total": [...], "matrix": 10x10,
    "class_acc": [[per class] per submission]}} from the graded submissions' accuracy tests."""
    out = {}
    for row in rows:
        if row["status"] != "graded":
            continue
        for t in graded_tests(results.get(row["submission_id"])):
            extra = t.get("extra_data") if isinstance(t.get("extra_data"), dict) else {}
            if not isinstance(extra.get("accuracy"), (int, float)) or "threshold" not in extra:
                continue
            stem = (t.get("tags") or ["?"])[0]
            entry = out.setdefault(stem, {"points": t.get("max_score", 0), "accuracies": [], "class_acc": [],
                                          "matrix": [[0] * len(CLASS_NAMES) for _ in CLASS_NAMES]})
            entry["accuracies"].append(float(extra["accuracy"]))
            counts = grade_all.class_counts(t)
            if counts:
                entry["class_acc"].append([int(c) / int(n) if int(n) else None for c, n in zip(*counts)])
            matrix = extra.get("confusion_matrix")
            if isinstance(matrix, list) and len(matrix) == len(CLASS_NAMES):
                for i, line in enumerate(matrix):
                    for j, v in enumerate(line[:len(CLASS_NAMES)]):
                        entry["matrix"][i][j] += int(v)
    return out


def class_means(entry):
    """The cohort's mean accuracy per class (None where no submission has the class)."""
    means = []
    for k in range(len(CLASS_NAMES)):
        values = [acc[k] for acc in entry["class_acc"] if acc[k] is not None]
        means.append(sum(values) / len(values) if values else None)
    return means


def top_confusions(matrix, n=CONFUSIONS):
    """[(count, true class, predicted class, share of the true class)] most frequent first."""
    totals = [sum(line) for line in matrix]
    pairs = [(matrix[i][j], i, j) for i in range(len(matrix)) for j in range(len(matrix)) if i != j and matrix[i][j]]
    pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
    return [(c, CLASS_NAMES[i], CLASS_NAMES[j], c / totals[i] if totals[i] else 0.0) for c, i, j in pairs[:n]]


def needs_a_human(rows, states):
    """[(id, names, status, reason)] for the rows not graded or with flags."""
    out = []
    for row in rows:
        flags = row.get("flags", "")
        if row["status"] == "graded" and not flags:
            continue
        reasons = []
        if row["status"] != "graded":
            detail = (states.get(row["submission_id"]) or {}).get("detail", "")
            reasons.append(f"{row['status']}" + (f": {detail}" if detail else ""))
        reasons += [f.strip() for f in flags.split(" | ") if f.strip()]
        out.append((row["submission_id"], row.get("names", ""), row["status"], reasons))
    return out


# -- drawing ------------------------------------------------------------------------------------------------
def png(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    import matplotlib.pyplot as plt
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def score_histogram(totals, full, marks):
    """The totals with a dashed line where a submission lands that is below k accuracy thresholds."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.6))
    top = max([full] + totals) or 1
    ax.hist(totals, bins=[top * i / 40 for i in range(41)], color="#4c72b0", edgecolor="white")
    for k, (x, label) in enumerate(marks):
        ax.axvline(x, color=("#2ca02c" if k == 0 else "#d62728"), linestyle="--", linewidth=1, label=label)
    ax.set_xlabel("total score")
    ax.set_ylabel("submissions")
    ax.set_xlim(0, top * 1.02)
    if marks:
        ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return png(fig)


def accuracy_histogram(stem, accuracies, threshold):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 2.6))
    low = min(accuracies + [threshold]) - 0.02
    ax.hist(accuracies, bins=20, range=(max(0.0, low), 1.0), color="#4c72b0", edgecolor="white")
    ax.axvline(threshold, color="#d62728", linestyle="--", label=f"threshold {threshold:g}")
    ax.set_title(f"{stem}: test accuracy", fontsize=9)
    ax.set_xlabel("accuracy")
    ax.set_ylabel("submissions")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return png(fig)


# -- the HTML -------------------------------------------------------------------------------------------------
CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em auto;max-width:1200px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{border-bottom:2px solid #ccc;margin-top:1.6em;font-size:1.25em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:2px 8px;text-align:left;
vertical-align:top}th{background:#f2f2f2}td.num{text-align:right;font-variant-numeric:tabular-nums}
.bar{display:inline-block;height:.8em;background:#4c72b0}.bad{color:#b00}.muted{color:#666}
details{margin:2px 0}summary{cursor:pointer}pre{margin:0;white-space:pre-wrap;font-size:12px}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:8px}.pair pre{max-height:420px;overflow:auto;
border:1px solid #ccc;padding:4px;background:#fafafa}mark{background:#ffd27a}
.stats span{margin-right:1.5em}.worst{background:#fde2e2}.ln{color:#999}.gap{color:#888;font-style:italic}
"""


def table(header, rows, cls=None):
    head = "".join(f"<th>{h}</th>" for h in header)
    return f"<table{f' class={cls!r}' if cls else ''}><thead><tr>{head}</tr></thead><tbody>" + \
        "".join(rows) + "</tbody></table>"


def section_distribution(rows, results, thresholds, acc):
    graded = [r for r in rows if r["status"] == "graded"]
    totals = [number(r["total"]) for r in graded if number(r["total"]) is not None]
    counts = {s: sum(r["status"] == s for r in rows) for s in grade_all.STATUSES}
    full = max((sum(t.get("max_score", 0) for t in graded_tests(results.get(r["submission_id"])))
                for r in graded), default=0)
    parts = ["<section id='distribution'><h2>Score distribution</h2><p class='stats'>"]
    parts.append(f"<span>{len(rows)} submissions</span>")
    parts += [f"<span>{e(s)}: <b id='count-{s}'>{n}</b></span>" for s, n in counts.items()]
    parts.append("</p>")
    if totals:
        parts.append(f"<p class='stats'><span>graded: {len(totals)}</span>"
                     f"<span>mean <b id='mean'>{statistics.mean(totals):.2f}</b></span>"
                     f"<span>median <b id='median'>{statistics.median(totals):.2f}</b></span>"
                     f"<span>min {min(totals):g}</span><span>max {max(totals):g}</span>"
                     f"<span>full marks {full:g}</span></p>")
        marks, below = [(full, f"full marks ({full:g})")], full
        for k, stem in enumerate(sorted(acc, key=lambda s: acc[s]["points"]), 1):
            below -= acc[stem]["points"]
            marks.append((below, f"below {k} accuracy threshold{'s' if k > 1 else ''} ({below:g})"))
        parts.append(f"<img alt='histogram of the total scores' src='{score_histogram(totals, full, marks)}'>")
        parts.append("<p class='muted'>Dashed lines: the total of a submission that passes every other test and "
                     "misses 0, 1, 2... accuracy thresholds. Thresholds (autograder/config.toml [thresholds]): "
                     + ", ".join(f"{e(stem)} {thresholds[stem]:g} ({acc[stem]['points']:g} points)"
                                 for stem in thresholds if stem in acc) + ".</p>")
    else:
        parts.append("<p>No submission was graded.</p>")
    parts.append("</section>")
    return "".join(parts)


def section_tests(rows, results):
    table_rows = []
    for t in test_table(rows, results):
        msgs = "".join(f"<tr><td class='num'>{n}</td><td><pre>{e(m)}</pre></td></tr>" for m, n in t["messages"][:MESSAGES])
        more = len(t["messages"]) - MESSAGES
        failures = sum(n for _, n in t["messages"])
        details = (f"<details><summary>{failures} failure{'s' if failures != 1 else ''}, "
                   f"{len(t['messages'])} distinct message(s)</summary>"
                   f"<table><tr><th>count</th><th>message (numbers as #)</th></tr>{msgs}</table>"
                   + (f"<p class='muted'>{more} more</p>" if more > 0 else "") + "</details>") if t["messages"] else ""
        table_rows.append(
            f"<tr data-test='{e(t['name'])}'><td>{e(t['number'])}</td><td>{e(t['name'])}{details}</td>"
            f"<td>{e(t['file'])}</td><td class='num'>{t['points']:g}</td>"
            f"<td class='num rate'>{100 * t['rate']:.1f}%</td><td class='num'>{t['passed']}/{t['graded']}</td>"
            f"<td><span class='bar' style='width:{round(100 * t['rate'])}px'></span></td></tr>")
    body = table(["#", "test", "file", "points", "pass rate", "passed", ""], table_rows) if table_rows else \
        "<p>No graded submission has results.</p>"
    return ("<section id='tests'><h2>Tests, worst pass rate first</h2><p class='muted'>Over the graded "
            "submissions. Open a test for its most common failure messages.</p>" + body + "</section>")


def section_files(acc, thresholds):
    parts = ["<section id='files'><h2>Accuracy per file</h2>"]
    if not acc:
        parts.append("<p>No accuracy test results.</p>")
    rows = []
    for stem in [s for s in thresholds if s in acc] + sorted(set(acc) - set(thresholds)):
        values, threshold = acc[stem]["accuracies"], thresholds.get(stem)
        reached = sum(v >= threshold for v in values) if threshold is not None else 0
        rows.append(f"<tr data-file='{e(stem)}'><td>{e(stem)}</td><td class='num'>"
                    f"{'-' if threshold is None else f'{threshold:g}'}</td><td class='num'>{len(values)}</td>"
                    f"<td class='num'>{statistics.mean(values):.4f}</td><td class='num'>{statistics.median(values):.4f}"
                    f"</td><td class='num'>{reached}/{len(values)}</td></tr>")
    if rows:
        parts.append(table(["file", "threshold", "submissions", "mean", "median", "at or above"], rows))
        for stem in acc:
            if stem in thresholds:
                parts.append(f"<img alt='accuracy of {e(stem)}' src='"
                             f"{accuracy_histogram(stem, acc[stem]['accuracies'], thresholds[stem])}'>")
    parts.append("</section>")
    return "".join(parts)


def section_classes(acc):
    parts = ["<section id='classes'><h2>Per class (Fashion-MNIST)</h2>"]
    stems = [s for s in acc if acc[s]["class_acc"]]
    if not stems:
        return parts[0] + "<p>No per-class data in the accuracy tests.</p></section>"
    means = {s: class_means(acc[s]) for s in stems}
    rows = []
    for k, name in enumerate(CLASS_NAMES):
        cells = []
        for s in stems:
            m = means[s][k]
            worst = m is not None and m == min(v for v in means[s] if v is not None)
            cells.append(f"<td class='num{' worst' if worst else ''}'>{'-' if m is None else f'{m:.3f}'}</td>")
        rows.append(f"<tr><td>{e(name)}</td>{''.join(cells)}</tr>")
    parts.append("<p class='muted'>Mean over the graded submissions of each one's accuracy on the class; the "
                 "class each file gets most wrong is shaded.</p>")
    parts.append(table(["class"] + [e(s) for s in stems], rows))
    for s in stems:
        conf = top_confusions(acc[s]["matrix"])
        if conf:
            parts.append(f"<h3>{e(s)}: most frequent confusions (pooled over {len(acc[s]['class_acc'])} "
                         "submissions)</h3>")
            parts.append(table(["true class", "predicted as", "count", "share of the true class"],
                               [f"<tr><td>{e(a)}</td><td>{e(b)}</td><td class='num'>{c}</td>"
                                f"<td class='num'>{share:.3f}</td></tr>" for c, a, b, share in conf]))
    parts.append("</section>")
    return "".join(parts)


def section_attention(rows, results_dir, states):
    items = needs_a_human(rows, states)
    parts = [f"<section id='attention'><h2>Needs a human ({len(items)})</h2>"
             "<p class='muted'>Not graded, or named by the instructor report (limits hit, refused actions, "
             "suspicious files).</p>"]
    if items:
        body = []
        for sid, names, status, reasons in items:
            path = os.path.join(results_dir, "results", f"{sid}.json")
            link = f"<a href='results/{e(sid)}.json'>results/{e(sid)}.json</a>" if os.path.exists(path) else \
                "<span class='muted'>no results.json</span>"
            body.append(f"<tr data-id='{e(sid)}'><td>{e(sid)}</td><td>{e(names)}</td><td>{e(status)}</td>"
                        f"<td class='reason'>{'<br>'.join(e(r) for r in reasons)}</td><td>{link}</td></tr>")
        parts.append(table(["submission", "names", "status", "reason", "details"], body))
    else:
        parts.append("<p>None.</p>")
    parts.append("</section>")
    return "".join(parts)


def section_changes(old_path, new_path):
    if not old_path:
        return ("<section id='changes'><h2>Changes since an earlier run</h2><p class='muted'>No earlier run given "
                "(make report GRADES=&lt;csv&gt; OLD=&lt;earlier csv&gt;).</p></section>")
    try:
        changes = compare.compare(compare.read(old_path), compare.read(new_path))
    except SystemExit as exc:         # compare.read's message names the file
        raise ReportError(str(exc)) from None
    parts = [f"<section id='changes'><h2>Changes since {e(os.path.basename(old_path))}</h2>"
             f"<p>{len(changes)} submission(s) changed.</p>"]
    per_test = {}
    rows = []
    for sid, a, b, diffs, note in changes:
        delta = f"{b - a:+g}" if a is not None and b is not None else ""
        rows.append(f"<tr data-id='{e(sid)}'><td>{e(sid)}</td><td class='num'>{compare.fmt(a)}</td>"
                    f"<td class='num'>{compare.fmt(b)}</td><td class='num'>{e(delta)}</td><td>{e(note)}</td>"
                    f"<td>{'<br>'.join(e(f'{t}: {compare.fmt(x)} -> {compare.fmt(y)}') for t, x, y in diffs)}</td></tr>")
        for test, x, y in diffs:
            up, down = per_test.get(test, (0, 0))
            gained = (y or 0) > (x or 0)
            per_test[test] = (up + gained, down + (not gained))
    if rows:
        parts.append(table(["submission", "old total", "new total", "change", "note", "tests"], rows))
    if per_test:
        parts.append("<h3>Per test</h3>" + table(
            ["test", "submissions gaining", "submissions losing"],
            [f"<tr><td>{e(t)}</td><td class='num'>{u}</td><td class='num'>{d}</td></tr>"
             for t, (u, d) in sorted(per_test.items())]))
    parts.append("</section>")
    return "".join(parts)


def section_similarity(submissions, ids, threshold):
    head = "<section id='similarity'><h2>Similar submissions</h2>"
    if not submissions:
        return head + ("<p class='muted'>Not checked: no export given (make report GRADES=&lt;csv&gt; "
                       "SUBMISSIONS=&lt;export&gt;).</p></section>")
    sources, problems = similarity.read_sources(submissions, ids)
    stats = {}
    pairs = similarity.similar_pairs(sources, threshold, stats=stats)
    parts = [head, f"<p>Every pair of submissions compared per graded file ({stats['pairs']} pairs) with copydetect "
                   f"{e(similarity.copydetect_version())}; the handout's code is left out, so only what students "
                   f"wrote counts. Listed: pairs whose score (the larger share of one file's own code found in the "
                   f"other) is at least <b id='similarity-threshold'>{threshold:g}</b>. Matching parts are "
                   f"marked.</p>"]
    for line in problems + stats["skipped"]:
        parts.append(f"<p class='muted'>{e(line)}</p>")
    if not pairs:
        parts.append("<p>No pair reaches the threshold.</p>")
    for k, p in enumerate(pairs[:SHOWN]):           # the first OPEN pairs open: they show when printed
        parts.append(f"<details class='similar' data-file='{e(p['file'])}' data-a='{e(p['a'])}' data-b='{e(p['b'])}'"
                     f"{' open' if k < OPEN else ''}>"
                     f"<summary><b>{p['score']:.2f}</b> {e(p['file'])}: {e(p['a'])} ({p['share_a']:.2f}) and "
                     f"{e(p['b'])} ({p['share_b']:.2f})</summary><div class='pair'>"
                     f"<div><b>{e(p['a'])}/{e(p['file'])}</b><pre>{similarity.side_by_side(p['text_a'], p['slices_a'])}</pre>"
                     f"</div><div><b>{e(p['b'])}/{e(p['file'])}</b><pre>"
                     f"{similarity.side_by_side(p['text_b'], p['slices_b'])}</pre></div></div></details>")
    if len(pairs) > SHOWN:
        parts.append(f"<p>{len(pairs) - SHOWN} more pair(s) at or above the threshold, without their code:</p>")
        parts.append(table(["score", "file", "submission", "submission"], [
            f"<tr class='similar-more'><td class='num'>{p['score']:.2f}</td><td>{e(p['file'])}</td><td>{e(p['a'])}"
            f"</td><td>{e(p['b'])}</td></tr>" for p in pairs[SHOWN:]]))
    parts.append("</section>")
    return "".join(parts)


def section_provenance(grades, rows, results, config):
    versions = sorted({r.get("grader_version", "") for r in rows} - {""})
    hashes = sorted({(res.get("extra_data") or {}).get("config_hash", "") for res in results.values() if res} - {""})
    made = datetime.datetime.now().isoformat(timespec="seconds")
    return ("<section id='provenance'><h2>Provenance</h2><table>"
            f"<tr><th>grades</th><td>{e(os.path.basename(grades))}</td></tr>"
            f"<tr><th>grader version</th><td id='grader-version'>{e(', '.join(versions) or '-')}</td></tr>"
            f"<tr><th>config hash (results)</th><td id='config-hash'>{e(', '.join(hashes) or '-')}</td></tr>"
            f"<tr><th>config hash (now)</th><td>{e(config['_hash'])}</td></tr>"
            f"<tr><th>report made</th><td id='made'>{e(made)}</td></tr></table></section>")


def build_html(grades, old=None, submissions=None, threshold=similarity.THRESHOLD):
    """The report's HTML for the grade-all CSV ``grades``."""
    _, rows = read_grades(grades)
    if old:
        read_grades(old)
    if submissions and not os.path.isdir(submissions):
        raise ReportError(f"{submissions}: not a folder; give the unzipped Gradescope export the CSV was graded from")
    try:
        config = config_mod.load()
    except config_mod.ConfigError as exc:
        raise ReportError(str(exc)) from None
    thresholds = config["thresholds"]
    folder = os.path.dirname(os.path.abspath(grades))
    ids = [r["submission_id"] for r in rows]
    results, states, problems = read_results(folder, ids)
    acc = accuracy_tests(rows, results)
    body = [f"<h1>Cohort report: {e(os.path.basename(grades))}</h1>"]
    body += [f"<p class='bad'>{e(p)}</p>" for p in problems]
    body += [section_distribution(rows, results, thresholds, acc), section_tests(rows, results),
             section_files(acc, thresholds), section_classes(acc), section_attention(rows, folder, states),
             section_changes(old, grades), section_similarity(submissions, ids, threshold),
             section_provenance(grades, rows, results, config)]
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>Cohort report {e(os.path.basename(grades))}</title><style>{CSS}</style></head><body>"
            + "\n".join(body) + "</body></html>\n")


def default_path(grades):
    name = os.path.basename(grades)
    stamp = name[len("grades-"):-len(".csv")] if name.startswith("grades-") and name.endswith(".csv") else \
        datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    return os.path.join(os.path.dirname(os.path.abspath(grades)), f"report-{stamp}.html")


def write_report(grades, out=None, old=None, submissions=None, threshold=similarity.THRESHOLD):
    """Write the report atomically; returns its path."""
    out = out or default_path(grades)
    grade_all.atomic_write_text(out, build_html(grades, old, submissions, threshold))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("grades", help="a grades-<time>.csv written by make grade-all")
    p.add_argument("--old", help="an earlier grades-<time>.csv: show what changed")
    p.add_argument("--submissions", help="the export the CSV was graded from: check similarity")
    p.add_argument("--similarity-threshold", type=float, default=similarity.THRESHOLD,
                   help=f"list pairs whose similarity score is at least this (default {similarity.THRESHOLD})")
    p.add_argument("--out", help="the HTML file (default: report-<time>.html next to the CSV)")
    args = p.parse_args(argv)
    try:
        path = write_report(args.grades, args.out, args.old, args.submissions, args.similarity_threshold)
    except (ReportError, OSError) as exc:
        print(f"report: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
