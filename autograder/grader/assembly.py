"""results.json of one run, assembled from its record: which tests, in what order, what the top-level
output says, and the run-wide extra_data.

``assemble`` is called after each file's quick tests and each training test (a checkpoint: only
the tests that have ended, and a line saying grading did not finish) and once at the end.
results.py owns the format (build, bound, validate, write); this module decides the content.
"""
from . import assignment, results


def top_output(lines, record, files, clock, final):
    """The top-level output: ``lines`` (the version, the notes on the upload), then what did not finish or
    ran out of time."""
    lines = list(lines)
    unfinished = {record.file_of_test.get(n) for n in record.run_order if n not in record.done}
    pending = [f for f in files if f in unfinished or not record.run_order]
    if not final:
        lines.append("Grading did not finish: the autograder was stopped before the last tests of "
                     + ", ".join(assignment.file_of(f).code for f in pending) + ". The scores below are those "
                     "of the tests that finished.")
    if final and clock and clock.lost:
        lines.append("Some tests ran out of time: "
                     + "; ".join(f"{assignment.file_of(s).code}: {len(t)}" for s, t in clock.lost.items())
                     + ". The grader gives each file a share of its total time; the other files keep theirs.")
    return "\n".join(lines)


def run_extra(summary, record, clock, isolation, smallest_memory_mb, final):
    """The run-wide extra_data: ``summary`` (what the run was given: files, threads, memory, time), then the
    isolation layers, errors, tests left out, whether the results are partial, the time per file."""
    extra = dict(summary, isolation=isolation.describe(), internal_errors=len(record.internal_errors),
                 tests_left_out=record.left_out, partial=not final, out_of_time=bool(clock and clock.lost),
                 time_per_file=clock.describe() if clock else {})
    extra["worker_memory_mb"] = smallest_memory_mb or extra.get("worker_memory_mb")
    return extra


def assemble(record, report, final, *, config, files, output_lines, clock, summary, isolation,
             smallest_memory_mb, elapsed):
    """results.json (results.build) from ``record`` so far; ``report``: the instructor report's record (last),
    or None to leave it out; ``final``: every test has ended."""
    records = record.ended(final)
    if report is not None:
        records.append(report)
    return results.build(records, config, elapsed, top_output(output_lines, record, files, clock, final),
                         leaderboard=record.leaderboard,
                         extra=run_extra(summary, record, clock, isolation, smallest_memory_mb, final))
