"""The run's clock: the total time, each graded file's share of it, and every request's limit.

``time_limits.total`` is divided among the graded files before any test runs: each file gets
``time_limits.file_minimum`` seconds plus the rest of the total in the proportions of
``[time_shares]``.  Everything a file's tests do (starting and importing its worker, its
requests, the clean-up after each test, restarts, the grader's own work for its tests)
is charged to that file.  A file may spend whatever is not held back for the files that
have not finished yet, so:

* a file can never spend another unfinished file's share (its requests are cut short,
  and then refused, when only the others' shares are left);
* time a finished file left unused goes to the files after it;
* a file's share is the least it gets, whatever the files before it did.

A request's limit is the smaller of its own limit (``[time_limits]``, stated for one full
CPU and scaled by ``scale``: a container with a quota of 0.5 CPU gets twice the time per
call) and the time its file may still spend.  A request is refused only when that time is
(next to) nothing.
"""
import contextlib
import time

from .checks import GradeFailure

NOTHING_LEFT = 0.5          # seconds: less than this left for a file is no time at all


class OutOfTime(GradeFailure):
    """A test of a file whose time is used up."""


def shares(total, minimum, weights, stems):
    """{stem: seconds}: ``minimum`` each (less if the total cannot give it), the rest of ``total``
    in proportion to ``weights``."""
    stems = list(stems)
    if not stems:
        return {}
    floor = min(float(minimum), float(total) / len(stems))
    rest = float(total) - floor * len(stems)
    weight = sum(float(weights.get(s, 1.0)) for s in stems) or 1.0
    return {s: floor + rest * float(weights.get(s, 1.0)) / weight for s in stems}


def cpu_scale(quota, enabled=True, largest=4.0):
    """(factor, why) for the per-request limits: 1 / quota below one CPU (at most ``largest``), else 1."""
    if not enabled:
        return 1.0, "time_limits.scale_with_cpu is off"
    if quota is None:
        return 1.0, "no CPU quota"
    if quota >= 1:
        return 1.0, f"CPU quota {quota:g} CPUs (one or more: limits as stated)"
    factor = round(min(float(largest), 1.0 / quota), 2)
    return factor, f"CPU quota {quota:g} CPUs: limits stated for one CPU times {factor:g}"


class Meter:
    """Seconds each file has used: the time spent inside ``charging(stem)`` goes to ``stem``, the innermost
    charge when they nest."""

    def __init__(self, stems, now=time.monotonic):
        self.now = now
        self.used = {s: 0.0 for s in stems}
        self._stack = []                     # files being charged, innermost last
        self._mark = None

    def _settle(self):
        t = self.now()
        if self._stack and self._mark is not None:
            stem = self._stack[-1]
            self.used[stem] = self.used.get(stem, 0.0) + max(0.0, t - self._mark)
        self._mark = t

    @contextlib.contextmanager
    def charging(self, stem):
        """Charge the time spent inside to ``stem`` (the innermost charge wins)."""
        self._settle()
        self._stack.append(stem)
        try:
            yield
        finally:
            self._settle()
            self._stack.pop()

    def spent(self, stem):
        """Seconds ``stem`` has used, including a charge still running."""
        extra = 0.0
        if self._stack and self._stack[-1] == stem and self._mark is not None:
            extra = max(0.0, self.now() - self._mark)
        return self.used.get(stem, 0.0) + extra


class Clock(Meter):
    """The run's clock: a Meter of each file's time, with each file's share, the run's deadline and every
    request's limit."""

    def __init__(self, total, deadline, shares_s, scale=1.0, now=time.monotonic):
        """``deadline``: the time.monotonic() by which everything must have ended; ``shares_s``:
        {stem: seconds}; ``scale``: factor for the per-request limits."""
        super().__init__(shares_s, now)
        self.total = float(total)
        self.deadline = deadline
        self.share = dict(shares_s)
        self.scale = float(scale)
        self.finished = set()
        self.lost = {}                       # stem -> names of the tests that lost to the clock

    def finish(self, stem):
        """``stem``'s last test ended: what it did not use goes to the files after it."""
        self.finished.add(stem)

    # -- limits ------------------------------------------------------------------------------------
    def left(self):
        return self.deadline - self.now() if self.deadline is not None else float("inf")

    def held_back(self, stem):
        """Seconds kept for the unfinished files other than ``stem``."""
        return sum(max(0.0, self.share[g] - self.spent(g)) for g in self.share
                   if g != stem and g not in self.finished)

    def available(self, stem):
        """Seconds ``stem`` may still spend."""
        return self.left() - self.held_back(stem)

    def has_time(self, stem):
        return self.available(stem) > NOTHING_LEFT

    def limit(self, stem, own):
        """(seconds, cut): the limit of a request of ``stem`` whose own limit is ``own`` seconds at one
        CPU; ``cut`` when the file's time left is the smaller.  Raises OutOfTime when none is left."""
        scaled = float(own) * self.scale
        avail = self.available(stem)
        if avail <= NOTHING_LEFT:
            raise OutOfTime(self.refusal(stem))
        return (avail, True) if avail < scaled else (scaled, False)

    # -- words -------------------------------------------------------------------------------------
    def _whose(self, stem):
        if self.left() <= NOTHING_LEFT:
            return f"the autograder's total time ({self.total:g} s for a whole submission) ran out"
        return (f"the time for {stem}.py ran out (its share of the autograder's {self.total:g} s is "
                f"{self.share.get(stem, 0):.0f} s, and it has used {self.spent(stem):.0f} s; the other files "
                "keep their own shares)")

    def refusal(self, stem):
        return f"not run: {self._whose(stem)}. The tests that finished before kept their scores."

    def cut_short(self, stem, what, seconds):
        return (f"{what}: stopped after {seconds:.0f} s because {self._whose(stem)}. Make it faster: the grader "
                "gives each file a share of its time.")

    def lose(self, stem, test):
        self.lost.setdefault(stem, []).append(test)

    def describe(self):
        """Per file: share, seconds used, tests lost to the clock (extra_data and the instructor report)."""
        return {s: {"share_s": round(self.share[s], 1), "used_s": round(self.spent(s), 1),
                    "lost_to_clock": list(self.lost.get(s, []))} for s in self.share}
