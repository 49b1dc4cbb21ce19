"""Similar pairs of submissions, per graded file, with the handout's own code left out.

    python tools/similarity.py SUBMISSIONS [--threshold 0.8] [--file numpy_ann.py ...]

Every pair of submissions is compared per graded file (grader.assignment.FILES) with copydetect
(winnowed k-gram fingerprints of the tokenised code, names and strings replaced, as in MOSS).  The
handout's file (handout/<file>.py) is boilerplate: its fingerprints are removed from every submission,
so only what students wrote counts.  A pair's score is the larger of the two shares of each file's
own (non-handout) fingerprinted code that the other file contains; a pair is listed when its score
reaches ``threshold``.  tools/report.py puts the pairs in the cohort report with a side-by-side view.
"""
import argparse
import html
import io
import logging
import os
import sys
import time
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "autograder"))
from grader.assignment import FILES  # noqa: E402
from grader.submission import find_files  # noqa: E402

HANDOUT = os.path.join(ROOT, "handout")
THRESHOLD = 0.8          # default score from which a pair is listed
NOISE = 25               # copydetect's noise threshold: the k of its k-grams (filtered characters)
GUARANTEE = 25           # matches this long are always found (window = GUARANTEE - NOISE + 1)
MAX_BYTES = 512 * 1024   # a larger "source file" is not compared (and is named in the result)


def graded_codes():
    """The graded files' names (numpy_ann.py, ...), from grader.assignment."""
    return [f.code for f in FILES]


def copydetect_version():
    from importlib.metadata import version
    return version("copydetect")


def _fingerprint(text, name, boilerplate=None):
    from copydetect import CodeFingerprint
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return CodeFingerprint(name, NOISE, GUARANTEE - NOISE + 1, boilerplate=boilerplate,
                               fp=io.StringIO(text))


def boilerplate(code, handout=HANDOUT):
    """The fingerprints of the handout's ``code`` (every k-gram, window 1, as copydetect does for
    boilerplate)."""
    import numpy as np
    path = os.path.join(handout, code)
    if not os.path.exists(path):
        return np.array([])
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    from copydetect import CodeFingerprint
    return np.unique(np.array(list(CodeFingerprint(code, NOISE, 1, fp=io.StringIO(text)).hashes)))


def read_sources(submissions, ids=None):
    """({id: {code: text}}, [problems]) for every submission folder in ``submissions`` (or ``ids``):
    the graded files found as the grader finds them (any case, any depth)."""
    codes = set(graded_codes())
    ids = sorted(d for d in os.listdir(submissions) if os.path.isdir(os.path.join(submissions, d))) \
        if ids is None else ids
    sources, problems = {}, []
    for sid in ids:
        folder = os.path.join(submissions, sid)
        if not os.path.isdir(folder):
            continue
        found, _ = find_files(folder)
        sources[sid] = {}
        for name, path in found.items():
            if name not in codes:
                continue
            if os.path.getsize(path) > MAX_BYTES:
                problems.append(f"{sid}/{name}: larger than {MAX_BYTES // 1024} KB, not compared")
                continue
            with open(path, encoding="utf-8", errors="replace") as fh:
                sources[sid][name] = fh.read()
    return sources, problems


def side_by_side(text, slices, context=3):
    """``text`` as escaped HTML with the matched character spans (copydetect's slices) in <mark>; only the
    lines within ``context`` lines of a match are kept, each gap is one line saying how many were left out."""
    spans, at = [], 0
    for start, end in sorted(zip(list(slices[0]), list(slices[1]))):
        start, end = max(int(start), at), min(int(end), len(text))
        if end > start:
            spans.append((start, end))
            at = end
    lines, offset = [], 0
    for line in text.split("\n"):
        lines.append((offset, offset + len(line)))
        offset += len(line) + 1
    marked = {k for k, (a, b) in enumerate(lines) for s, t in spans if s < max(b, a + 1) and t > a}
    keep = {k + d for k in marked for d in range(-context, context + 1)} & set(range(len(lines)))
    out, skipped = [], 0
    for k, (a, b) in enumerate(lines):
        if k not in keep:
            skipped += 1
            continue
        if skipped:
            out.append(f"<span class='gap'>... {skipped} line(s) without a match ...</span>")
            skipped = 0
        pieces, at = [], a
        for s, t in spans:
            s, t = max(s, a), min(t, b)
            if t <= s:
                continue
            pieces += [html.escape(text[at:s]), "<mark>" + html.escape(text[s:t]) + "</mark>"]
            at = t
        pieces.append(html.escape(text[at:b]))
        out.append(f"<span class='ln'>{k + 1:4d}</span> " + "".join(pieces))
    if skipped:
        out.append(f"<span class='gap'>... {skipped} line(s) without a match ...</span>")
    return "\n".join(out)


def similar_pairs(sources, threshold=THRESHOLD, codes=None, handout=HANDOUT, stats=None):
    """Pairs whose score reaches ``threshold``, most similar first: dicts with file, a, b, score, share_a,
    share_b, text_a, text_b and slices_a, slices_b (the matched character spans; side_by_side marks them).  ``stats``, a dict, gets the counts and
    times: files fingerprinted, pairs compared, seconds for each step."""
    from copydetect import compare_files
    logging.getLogger().setLevel(max(logging.getLogger().level, logging.ERROR))
    stats = {} if stats is None else stats
    stats.update(files=0, pairs=0, fingerprint_s=0.0, compare_s=0.0, skipped=[])
    pairs = []
    for code in codes or graded_codes():
        t0 = time.perf_counter()
        bp = boilerplate(code, handout)
        prints = {}
        for sid in sorted(sources):
            text = sources[sid].get(code)
            if not text:
                continue
            try:
                prints[sid] = _fingerprint(text, code, bp)
            except Exception as exc:  # noqa: BLE001 - one odd file never stops the check
                stats["skipped"].append(f"{sid}/{code}: not fingerprinted ({type(exc).__name__}: {exc})")
        stats["files"] += len(prints)
        t1 = time.perf_counter()
        stats["fingerprint_s"] += t1 - t0
        ids = sorted(prints)
        for i, a in enumerate(ids):
            for b in ids[i + 1:]:
                overlap, (share_a, share_b), (slices_a, slices_b) = compare_files(prints[a], prints[b])
                stats["pairs"] += 1
                score = max(float(share_a), float(share_b))
                if overlap and score >= threshold:
                    pairs.append({"file": code, "a": a, "b": b, "score": score, "share_a": float(share_a),
                                  "share_b": float(share_b), "text_a": prints[a].raw_code,
                                  "text_b": prints[b].raw_code, "slices_a": slices_a, "slices_b": slices_b})
        stats["compare_s"] += time.perf_counter() - t1
    pairs.sort(key=lambda p: (-p["score"], p["file"], p["a"], p["b"]))
    return pairs


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("submissions", help="the unzipped Gradescope export (one folder per submission)")
    p.add_argument("--threshold", type=float, default=THRESHOLD, help=f"list pairs from this score (default {THRESHOLD})")
    p.add_argument("--file", action="append", choices=graded_codes(), help="only this graded file (repeatable)")
    args = p.parse_args(argv)
    if not os.path.isdir(args.submissions):
        print(f"similarity: {args.submissions} is not a folder; give the unzipped Gradescope export", file=sys.stderr)
        return 2
    sources, problems = read_sources(args.submissions)
    stats = {}
    pairs = similar_pairs(sources, args.threshold, args.file, stats=stats)
    for line in problems + stats["skipped"]:
        print(f"similarity: {line}", file=sys.stderr)
    per_pair = stats["compare_s"] / stats["pairs"] * 1e6 if stats["pairs"] else 0.0
    print(f"{len(sources)} submissions, {stats['pairs']} pairs compared in {stats['compare_s']:.2f} s "
          f"({per_pair:.0f} us a pair), {stats['files']} files fingerprinted in {stats['fingerprint_s']:.2f} s; "
          f"{len(pairs)} pair(s) at or above {args.threshold:g}")
    for pair in pairs:
        print(f"  {pair['score']:.2f}  {pair['file']}  {pair['a']}  {pair['b']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
