"""Grade seeded bugs (mutants) and alternative correct solutions.

    python tools/variants.py mutants       [--jobs N] [--only NAME,...] [--json FILE] [--no-cache] [--update]
    python tools/variants.py alternatives  [--jobs N] [--only NAME,...] [--json FILE] [--no-cache]
    python tools/variants.py real_style    [--jobs N] [--only NAME,...] [--json FILE] [--no-cache]

Each variant is the reference submission (solution/) with one file patched as
described in tests/mutants/mutants.toml or tests/alternatives/alternatives.toml.
A variant grades only its own file's tests.  Mutants run with the cheaper
training budgets in CHEAP (passed to the grader with --set) and are compared
test by test with the reference under the same settings: a mutant is caught
when it earns fewer points.  Alternatives run with the real config and must
earn full marks.  Real-style submissions (tests/real_style/<submission>/, written by hand the
way students hand the assignment in) are not patches: each of their files is graded on its own,
byte for byte and alone in its folder, with the CHEAP budgets, and must earn full marks on every
test of its file (variant name "<submission>.<file stem>").  A variant that edits only functions no training test calls (UNTRAINED) is
graded without its training tests, which stand as the reference's; one that edits only functions a
training test never calls (UNCALLED_BY: report_my_judgement and the accuracy test) without that test.
A mutant in no row of the contract table (autograder/contract.toml) has only to lose points: it is graded
first without its training tests, and again in full only when that grading does not catch it.  An
alternative marked ``cheap`` (its reason beside it) runs with CHEAP; it may edit only __init__, or the
functions its ``cheap_edits`` names.
Exit status 1 when any expectation fails.  A grading whose inputs are
unchanged since an earlier run (grader, config, the file's tests, the variant's bytes...) is
taken from build/grading-cache (tools/grading_cache.py); --no-cache grades everything again.

The mutants' run is checked against the contract table (autograder/contract.toml): each promise's
mutant must lose points in its own ``tests`` (written by hand; in one at least) and, besides them,
only in its ``also`` (measured); a test of the row it passes is printed as a note.  --update (make contract-update) first rewrites each graded
mutant's also from this run; it never touches ``tests``.
"""
import argparse
import ast
import concurrent.futures
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))     # grade_folder, when imported by file name
import contract  # noqa: E402
import grading_cache  # noqa: E402
from grade_folder import ROOT, GradeFolderError, grade_folder  # noqa: E402

SOLUTION = os.path.join(ROOT, "solution")
SPECS = {"mutants": ("tests/mutants/mutants.toml", "mutant"),
         "alternatives": ("tests/alternatives/alternatives.toml", "alternative"),
         "real_style": ("tests/real_style", None)}        # a folder per submission, no patches
# Cheap budgets for the mutants (their baselines alike) and the real-style submissions: every test still
# runs, with less training and fewer test images.  What the reference scores with them (make test's
# mutants' baselines, measured 2026-12-06) against the thresholds: pytorch_cnn 0.867-0.871 of 0.85 (fewer
# images would bring it within noise of the threshold), numpy_ann 0.815 of 0.77 (2 epochs of 30,000 images),
# pytorch_ann 0.832 of 0.80 (8,000 images), fashionmnist 0.911 of 0.80 (2,000 test images).
CHEAP = ("budget.pytorch_cnn.train_images=19200", "budget.pytorch_cnn.test_images=2000",
         "budget.numpy_ann.epochs=2", "budget.pytorch_ann.train_images=8000",
         "budget.pytorch_ann.judgement_train_images=5000", "budget.fashionmnist.test_images=2000")
SUBMITTED = (".py", ".png", ".pth")
# The functions of each graded file that no training test (@pytest.mark.training) calls: those tests
# train, then the grader predicts from the trained weights itself.  A variant whose file differs from
# the reference's only inside the bodies of these functions trains exactly as the reference does, so
# its training tests are left out (--skip-training) and stand as the reference's: for a mutant they
# cannot catch it (the same code runs: only the grader's draws from the file's bytes, its relabelling
# and noise, would differ, and make flaky shows that verdicts do not hang on those), for an alternative
# they are the reference's (graded in full by make grade and the Gradescope simulation).  tests/test_variants.py proves this
# list: the reference with these bodies replaced by a raise scores on every training test exactly as
# the reference does.  The cold make test saves several CPU-minutes of training this way.
UNTRAINED = {
    "numpy_ann": ("accuracy",),                       # its accuracy test calls predict (the lookup check)
    "pytorch_ann": ("predict", "accuracy", "plot_train_val_metrics"),
    "pytorch_cnn": ("predict", "accuracy", "plot_train_val_metrics"),
    "fashionmnist": ("count_parameters", "train_model", "save_example_images", "plot_training_loss"),
}
# Beyond UNTRAINED, what one training test never calls: the accuracy test trains, then reads the weights
# back; report_my_judgement is called only by the judgement tests.  A variant that edits only these and
# UNTRAINED's bodies is graded without that test (-k), which stands as the reference's for the same
# reason as above; tests/test_variants.py proves this list the same way.
UNCALLED_BY = {"test_accuracy_threshold": {"pytorch_ann": ("report_my_judgement",),
                                           "pytorch_cnn": ("report_my_judgement",)}}


class VariantError(ValueError):
    pass


def real_style_specs(top):
    """One spec per graded file of each submission folder under ``top``: its .py files, taken whole."""
    specs = []
    for submission in sorted(os.listdir(top)):
        folder = os.path.join(top, submission)
        if not os.path.isdir(folder):
            continue
        files = sorted(f for f in os.listdir(folder) if f.endswith(".py"))
        if not files:
            raise VariantError(f"{os.path.relpath(folder, ROOT)}: a real-style submission without .py files")
        specs += [{"name": f"{submission}.{f[:-3]}", "submission": submission, "file": f,
                   "source": os.path.join(folder, f)} for f in files]
    return specs


def load_specs(kind):
    path, key = SPECS[kind]
    if key is None:
        top = os.path.join(ROOT, path)
        return real_style_specs(top), top
    with open(os.path.join(ROOT, path), "rb") as fh:
        specs = tomllib.load(fh).get(key, [])
    names = [s["name"] for s in specs]
    if len(names) != len(set(names)):
        raise VariantError(f"{path}: variant names must be unique")
    return specs, os.path.dirname(os.path.join(ROOT, path))


def build(spec, spec_dir, dest):
    """Copy the reference submission into ``dest`` and apply the variant (none without a "file").  A
    real-style spec ("source") is its one file, copied byte for byte, alone in ``dest``."""
    os.makedirs(dest)
    if spec.get("source"):
        shutil.copy(spec["source"], os.path.join(dest, spec["file"]))
        return
    for name in os.listdir(SOLUTION):
        if name.endswith(SUBMITTED) and name != "utils.py":
            shutil.copy(os.path.join(SOLUTION, name), os.path.join(dest, name))
    if spec.get("file"):              # no file: the reference as it is
        target = os.path.join(dest, spec["file"])
        with open(target, encoding="utf-8") as fh:
            text = fh.read()
        for find, replace in spec.get("edits", []):
            count = text.count(find)
            if count != 1:
                raise VariantError(f"{spec['name']}: the text to replace occurs {count} times in {spec['file']} "
                                   f"(must be once): {find[:60]!r}")
            text = text.replace(find, replace)
        with open(target, "w", encoding="utf-8") as fh:
            fh.write(text)
    for source, name in spec.get("files", []):
        shutil.copy(os.path.join(spec_dir, source), os.path.join(dest, name))
    if spec.get("script"):
        env = dict(os.environ, PYTHONPATH=SOLUTION, MPLBACKEND="Agg")
        proc = subprocess.run([sys.executable, "-c", spec["script"]], cwd=dest, env=env, capture_output=True,
                              text=True, timeout=600)
        if proc.returncode:
            raise VariantError(f"{spec['name']}: its script failed: {proc.stderr[-500:]}")


def hollowed(text, names, body="pass"):
    """The module's syntax tree with the bodies of the functions in ``names`` replaced by ``body``:
    what the training tests can run of it.  Decorators, arguments and their defaults stay (they run
    when the module is imported)."""
    tree = ast.parse(text)
    replacement = ast.parse(body).body
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in names:
            node.body = replacement
    return tree


def trains_as_reference(spec, folder, extra=()):
    """True when ``spec`` edits its file only inside the bodies of UNTRAINED[its file] and ``extra`` (and
    brings no other file, runs no script): its training tests (those that call none of ``extra``) would run
    the reference's code."""
    if not spec.get("file") or spec.get("files") or spec.get("script") or spec.get("source"):
        return False
    names = (*UNTRAINED.get(spec["file"][:-3], ()), *extra)
    with open(os.path.join(SOLUTION, spec["file"]), encoding="utf-8") as fh:
        reference = fh.read()
    with open(os.path.join(folder, spec["file"]), encoding="utf-8") as fh:
        variant = fh.read()
    try:
        return ast.dump(hollowed(variant, names)) == ast.dump(hollowed(reference, names))
    except SyntaxError:
        return False


def grade(folder, stem, overrides, threads, extra=(), tag="results"):
    """Grade ``folder`` on the tests of ``stem`` (comma-separated stems allowed); returns results.json's tests.
    ``threads`` limits the worker's torch/BLAS threads (use 1 when grading in parallel).  A grading whose
    key is in the grading cache (tools/grading_cache.py) is not run again."""
    results = f"{folder}.{stem.replace(',', '+')}.{tag}.json"      # beside the folder: never part of its key
    args = ["--files", stem, *extra, *[arg for item in overrides for arg in ("--set", item)]]

    def run():
        try:
            result, proc = grade_folder(folder, results, *args, threads=threads)
        except GradeFolderError as exc:
            raise VariantError(str(exc)) from None
        return result, proc.returncode, proc.stdout

    # the worker's thread count is part of the key: it is in the environment the grader gets
    env = dict(os.environ, NNAG_WORKER_THREADS=str(threads)) if threads else os.environ
    result, _ = grading_cache.cached_grading(folder, args, run, env=env)
    return result["tests"]


def scores_of(tests):
    return {t["name"]: (t["score"], t["max_score"], t["tags"][1]) for t in tests}


def test_ids(tests):
    """{results name: the test's id without its [parameters]} (extra_data.test_id, which the grader writes)."""
    return {t["name"]: re.sub(r"\[.*\]$", "", t["extra_data"]["test_id"]) for t in tests
            if isinstance(t.get("extra_data"), dict) and isinstance(t["extra_data"].get("test_id"), str)}


def narrowing(spec, folder):
    """(the grader's arguments that leave out the training tests which would run the reference's code, what
    the row says of its training): all of them (UNTRAINED), one (UNCALLED_BY) or none."""
    stem = spec["file"][:-3]
    if trains_as_reference(spec, folder):
        return ("--skip-training", stem), "reference's"
    for test, uncalled in UNCALLED_BY.items():
        if stem in uncalled and trains_as_reference(spec, folder, uncalled[stem]):
            return ("-k", f"not {test}"), f"{test} the reference's"
    return (), "graded"


@functools.lru_cache(maxsize=None)
def promised_mutants():
    """The mutants the contract table names (autograder/contract.toml): each must lose points exactly where
    its row says, so every test of its file is graded."""
    return frozenset(p["mutant"] for p in contract.load())


def caught(tests, base):
    """The results names of the tests in which a grading (``tests``) earned fewer points than the baseline."""
    return sorted(n for n, (s, _, _) in scores_of(tests).items() if n in base and s < base[n][0])


def evaluate(kind, spec, spec_dir, work, baselines, overrides, threads):
    folder = os.path.join(work, spec["name"])
    build(spec, spec_dir, folder)
    stem = spec["file"][:-3]
    extra, training = narrowing(spec, folder)
    if kind == "alternatives" and spec.get("cheap"):
        allowed = tuple(spec.get("cheap_edits", ("__init__",)))
        if not trains_as_reference(spec, folder, allowed):
            raise VariantError(f"{spec['name']}: cheap budgets are only for an alternative that edits nothing "
                               f"but {', '.join(allowed)} (its cheap reason says why its real-budget training is "
                               "the reference's)")
        overrides, training = CHEAP, f"cheap budgets: {spec['cheap']}"
    tests = None
    if kind == "mutants" and not extra and spec["name"] not in promised_mutants():
        # a mutant in no row of the contract has only to lose points: where the file's quick tests show that,
        # its training tests (19,200 images of CNN training, say) would prove nothing more
        tests = grade(folder, stem, overrides, threads, ("--skip-training", stem))
        if caught(tests, baselines[stem]):
            training = "left out: caught without it (no contract row)"
        else:
            tests = None
    if tests is None:
        tests = grade(folder, stem, overrides, threads, extra)
    scores = scores_of(tests)
    row = {"name": spec["name"], "file": stem, "score": sum(s for s, _, _ in scores.values()),
           "max": sum(m for _, m, _ in scores.values()), "training": training}
    if kind == "mutants":
        base = baselines[stem]
        lost_in = caught(tests, base)
        ids = test_ids(tests)
        row.update(lost=sum(base[n][0] - scores[n][0] for n in lost_in), caught_by=lost_in,
                   caught_ids=[ids.get(n) for n in lost_in],
                   public=any(base[n][2] == "public" for n in lost_in), ok=bool(lost_in))
    else:
        row.update(failed=sorted(n for n, (s, m, _) in scores.items() if s < m), ok=row["score"] == row["max"])
    if kind == "real_style":
        row.update(submission=spec["submission"], tests=len(scores),
                   messages={t["name"]: (t.get("output") or "").strip() for t in tests if t["score"] < t["max_score"]})
    return row


def check_contract(rows, update=False, only=False):
    """The contract table's problems with this grading of the mutants (``rows``), as sentences; with
    ``update``, each graded mutant's also is rewritten first (atomically; tests are never touched).
    ``only``: some mutants were left out on purpose, so their promises are not checked."""
    tests = contract.test_functions()
    failed, unnamed = {}, {}
    for r in rows:
        if r.get("caught_ids") and all(r["caught_ids"]):       # the grader's own ids: no name matching
            failed[r["name"]], unnamed[r["name"]] = set(r["caught_ids"]), []
        else:                                                    # results without ids (an older grader)
            failed[r["name"]], unnamed[r["name"]] = contract.failed_tests(r["caught_by"], tests)

    def promises():
        return [p for p in contract.load() if not only or p["mutant"] in failed]
    if update:
        changed = contract.update_also(contract.measured_also(promises(), failed))
        print(f"contract: rewrote the also of {len(changed)} promises in {os.path.relpath(contract.TABLE, ROOT)}"
              + (": " + ", ".join(changed) if changed else " (none changed: the file is untouched)"))
    for note in contract.mutant_notes(promises(), failed):
        print(f"note: {note}")
    return contract.mutant_problems(promises(), failed, unnamed)


def mutants_summary(rows, baselines):
    """Print the mutants' table; True when every mutant loses points and half of them in public tests."""
    for stem, base in sorted(baselines.items()):
        failing = [n for n, (s, m, _) in base.items() if s < m]
        if failing:
            print(f"note: with the cheap budgets the reference itself fails in {stem}: {failing}")
    print(f"{'mutant':<44} {'file':<13} {'lost':>6}  public  caught by")
    for r in rows:
        print(f"{r['name']:<44} {r['file']:<13} {r['lost']:>6g}  {'yes' if r['public'] else 'no':<6}  "
              f"{'; '.join(r['caught_by'])[:110] or 'NOT CAUGHT'}")
    public = sum(r["public"] for r in rows)
    print(f"\n{len(rows)} mutants, {sum(r['ok'] for r in rows)} lose points, {public} caught by public tests")
    print(narrowed_note(rows))
    return bool(rows) and all(r["ok"] for r in rows) and public * 2 >= len(rows)


def narrowed_note(rows):
    same = [r["name"] for r in rows if r["training"] == "reference's"]
    some = [f"{r['name']} ({r['training'].split()[0]})" for r in rows
            if r["training"].startswith("test_") and r["training"].endswith(" the reference's")]
    quick = [r["name"] for r in rows if r["training"].startswith("left out")]
    return (f"{len(same)} of {len(rows)} change only functions no training test calls (UNTRAINED): their "
            f"training tests were left out and stand as the reference's: {', '.join(same) or 'none'}\n"
            f"{len(some)} change only functions one training test never calls (UNCALLED_BY): that test was left "
            f"out and stands as the reference's: {', '.join(some) or 'none'}"
            + (f"\n{len(quick)} in no row of the contract table lost points in the quick tests, so their training "
               f"tests were not graded (losing points is all such a mutant must do): {', '.join(quick)}"
               if quick else ""))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kind", choices=sorted(SPECS))
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    p.add_argument("--only", default="", help="comma-separated variant names")
    p.add_argument("--json", help="also write the rows as JSON")
    p.add_argument("--no-cache", action="store_true",
                   help="grade every variant again (by default an unchanged grading comes from build/grading-cache)")
    p.add_argument("--update", action="store_true",
                   help="mutants: rewrite the also lists of autograder/contract.toml from this run")
    args = p.parse_args(argv)
    if args.update and args.kind != "mutants":
        p.error("--update rewrites the contract's also lists from the mutants: use it with mutants")
    try:
        specs, spec_dir = load_specs(args.kind)
    except (OSError, tomllib.TOMLDecodeError, VariantError) as exc:
        print(f"variants: {exc}", file=sys.stderr)
        return 2
    if args.only:
        wanted = set(args.only.split(","))
        specs = [s for s in specs if s["name"] in wanted]
    if args.no_cache:
        os.environ["NNAG_GRADING_CACHE"] = "off"
    overrides = CHEAP if args.kind in ("mutants", "real_style") else ()
    threads = 1 if args.jobs > 1 else 0
    rows, errors = [], []
    with tempfile.TemporaryDirectory(prefix="nnag-variants-") as work:
        os.chmod(work, 0o755)
        baselines = {}
        if args.kind == "mutants":
            reference = os.path.join(work, "_reference")
            build({"name": "_reference"}, spec_dir, reference)
            stems = sorted({s["file"][:-3] for s in specs})
            with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
                for stem, tests in zip(stems, pool.map(lambda st: grade(reference, st, overrides, threads), stems)):
                    baselines[stem] = scores_of(tests)
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            futures = {pool.submit(evaluate, args.kind, s, spec_dir, work, baselines, overrides, threads): s
                       for s in specs}
            for future in concurrent.futures.as_completed(futures):
                try:
                    rows.append(future.result())
                except VariantError as exc:
                    errors.append(str(exc))
    rows.sort(key=lambda r: [s["name"] for s in specs].index(r["name"]))
    if args.kind == "mutants":
        ok = mutants_summary(rows, baselines)
        try:
            errors += check_contract(rows, args.update, bool(args.only))
        except (OSError, tomllib.TOMLDecodeError, contract.ContractError) as exc:
            errors.append(f"contract: {exc}")
    elif args.kind == "real_style":
        print(f"{'real-style submission':<44} {'file':<13} {'score':>11}  failed tests")
        for r in rows:
            print(f"{r['submission']:<44} {r['file']:<13} {r['score']:>5g}/{r['max']:<5g}  {len(r['failed'])}")
            for name, message in r["messages"].items():
                print(f"    {name}: {message[:300]}")
        ok = rows and all(r["ok"] for r in rows)
    else:
        print(f"{'alternative':<44} {'file':<13} {'score':>11}  failed tests")
        for r in rows:
            print(f"{r['name']:<44} {r['file']:<13} {r['score']:>5g}/{r['max']:<5g}  {'; '.join(r['failed'])}")
        print(narrowed_note(rows))
        for r in rows:
            if r["training"].startswith("cheap"):
                print(f"{r['name']}: graded with the {r['training']}")
        ok = rows and all(r["ok"] for r in rows)
    for e in errors:
        print(f"ERROR {e}", file=sys.stderr)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"rows": rows, "errors": errors}, fh, indent=1)
    return 0 if ok and not errors else 1


if __name__ == "__main__":
    sys.exit(main())
