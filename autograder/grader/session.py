"""Grading session: one worker per submitted file, and the API tests use.

Tests never see student objects, only handles:

    ann = numpy_ann.new("NumpyANN", 4, 3, 2, 0.1)
    out = ann.call("_forward", X)          # plain data back
    W1 = ann.get("W1")

Each graded file is a StudentFile (the tests' fixture) over a FileWorker (its worker and state).
A file that is missing, or fails or hangs at import, is recorded once; every
later request for it fails at once with that message.  So does a file whose
requests ran out of time ``time_limits.timeouts_per_file`` times: a method that
never returns costs that many time limits, not one per test.
"""
import os
import time
from types import MappingProxyType

import numpy as np

from . import client, protocol, submission
from .protocol import ErrorKind, Op
from .checks import GradeFailure
from .clock import OutOfTime
from .assignment import file_of


class Unavailable(GradeFailure):
    """The student's file cannot be used (missing, or broken at import)."""


# What a failed request raised, as the worker classified it (client.StudentError.kind, a protocol.ErrorKind):
# the grader decides on the kind, never on the message's text.  The worker runs the student's code, which can
# forge its reply: a kind that is not declared reads as OTHER, and a kind only chooses which of the grader's own
# words are added (the memory hint to the student, a line of the instructor report).  Every StudentError fails
# its test, or its file at import, whatever its kind: a forged kind changes no score.
NOTED_ERRORS = frozenset({ErrorKind.EXIT, ErrorKind.MEMORY, ErrorKind.PERMISSION, ErrorKind.UNPICKLING,
                          ErrorKind.RECURSION})      # named in the instructor report with the exception's type
MAIN = "`if __name__ == \"__main__\":`"
# each kind of action the worker's audit hook refuses (sandbox.KINDS), as the student is told it:
# (what the file tried, an example, what to do when it happened at import, what to do in a call).
# Only the kind is named, never the path or the address: those stay in the instructor's report.
REFUSALS = MappingProxyType({
    "network": ("tried to open a network connection", "for example a data set download",
                f"The grader has no network: load data only inside `main()` or under {MAIN}.",
                "The grader has no network: use the data the grader passes to your functions, and download "
                f"only under {MAIN}."),
    "write": ("tried to write a file outside its own folder", "for example by an absolute path or `../`",
              "Save files only in the folder your code runs in, by plain relative names such as "
              "`\"loss.png\"`, and save them inside functions or under " + MAIN + ", not at import.",
              "Save files only in the folder your code runs in, by plain relative names such as "
              "`\"loss.png\"`."),
    "process": ("tried to start another program", "for example `pip install`, `nvidia-smi` or a shell command",
                "The grader runs only your Python code: install nothing and run no commands from your file "
                "(check for a GPU with `torch.cuda.is_available()`).",
                "The grader runs only your Python code: install nothing and run no commands from your file "
                "(check for a GPU with `torch.cuda.is_available()`)."),
    "read": ("tried to read a file the grader protects", "for example the data set's test files",
             f"Load data only inside `main()` or under {MAIN}; the graded functions get their data from the "
             "grader.",
             "Use only the data the grader passes to your functions and the files of your own submission."),
    # named neutrally: which other actions are refused (sockets to other local processes) is the
    # grader's business, and only an attack does them
    "other": ("tried an action the grader does not allow", None,
              f"Make importing your file only define functions and classes; run everything else under {MAIN}.",
              "Keep your functions to what their docstrings ask for."),
})


def refusal_message(filename, kinds, during=None):
    """What the student is told when the audit hook refused ``kinds`` while ``filename`` was imported
    (``during`` None) or while it ran ``during`` (a test's request: "PyTorchANN.train", ...)."""
    when = "while being imported" if during is None else f"during {during}"
    sentences = []
    for kind in kinds:
        action, example, at_import, in_call = REFUSALS.get(kind, REFUSALS["other"])
        sentences.append(f"{filename} {action} {when}" + (f" ({example})" if example else "") + ". "
                         + (at_import if during is None else in_call))
    return "\n".join(sentences)


def long_import_message(filename, limit):
    """The import ran out of its own time limit: top-level work (training, downloads), not a hang."""
    return (f"{filename} did long work while being imported (for example training a model at the top level of "
            f"the file) and was stopped after the import's time limit of {limit:g} s. Code at the top level of a "
            f"file runs when the grader imports it: put training, plotting and downloads inside `main()` or under "
            f"{MAIN}, so that importing the file only defines its functions and classes.")


def data(array, dtype="float64", scale=1.0, shape=None, torch=False):
    """Send uint8/float ``array`` compactly; the worker converts it (trusted code)."""
    spec = {"array": np.ascontiguousarray(array), "dtype": dtype, "scale": scale, "torch": torch}
    if shape is not None:
        spec["shape"] = list(shape)
    return {protocol.DATA: spec}


def onehot(labels, classes=10, dtype="float64", torch=False):
    return {protocol.ONEHOT: {"labels": np.asarray(labels, dtype=np.int64), "classes": classes,
                           "dtype": dtype, "torch": torch}}


def tensor(array):
    return {protocol.TENSOR: np.ascontiguousarray(array)}


class Handle:
    """An object living in a worker.

    More methods than the package's other classes, on purpose: a thin proxy with one short method per
    request a test may make of an object (each names the op and what the report calls it), so that a
    test's handle offers every request in one place."""

    def __init__(self, student_file, handle, label):
        self.file = student_file
        self.handle = handle
        self.label = label

    def ref(self):
        return {protocol.REF: self.handle}

    def call(self, method, *args, timeout=None, keep=False, may_change=(), **kwargs):
        """Call ``method`` in the worker.  The call fails when it changed an array or tensor
        argument in place, unless that argument is named in ``may_change``."""
        value = self.file.request(Op.CALL, timeout, what=f"{self.label}.{method}", target=self.handle,
                                  method=method, args=list(args), kwargs=kwargs, keep=keep, may_change=may_change)
        return Handle(self.file, value["handle"], f"{self.label}.{method}()") if keep else value

    def get(self, name, timeout=None):
        return self.file.request(Op.GETATTR, timeout, what=f"{self.label}.{name}", target=self.handle, name=name)

    def set(self, name, value, timeout=None):
        return self.file.request(Op.SETATTR, timeout, what=f"{self.label}.{name}", target=self.handle,
                                 name=name, value=value)

    def state_dict(self, attr=None):
        return self.file.request(Op.STATE_DICT, None, what=f"{self.label}.state_dict", target=self.handle,
                                 attr=attr)

    def parameters(self, attr=None):
        """{name: array} of the trainable parameters (requires_grad), without the buffers."""
        return self.file.request(Op.PARAMETERS, None, what=f"{self.label}.parameters()", target=self.handle,
                                 attr=attr)

    def layers(self, attr=None):
        return self.file.request(Op.LAYERS, None, what=f"{self.label}.{attr or ''}", target=self.handle, attr=attr)

    def param_count(self, attr=None):
        return self.file.request(Op.PARAM_COUNT, None, what=f"{self.label}.parameters()", target=self.handle, attr=attr)

    def set_mode(self, training, attr=None):
        return self.file.request(Op.SET_MODE, None, what=f"{self.label}.{attr}.train({training})",
                                 target=self.handle, attr=attr, training=training)

    def load_weights(self, path, timeout=None):
        return self.file.request(Op.LOAD_WEIGHTS, timeout, what=f"loading {path}", target=self.handle, path=path)

    def probe(self, attr=None):
        """From now until probe_log(): note every submodule that runs forward() in training
        mode or with gradients enabled."""
        return self.file.request(Op.PROBE, None, what="probe", target=self.handle, attr=attr)

    def probe_log(self):
        """{"calls": n, "training": [submodule (type)...], "grad": [...], "backward": n, "backward_eval": [...]}
        since probe() (backward: forwards gradients flowed back through; backward_eval: the submodules among
        them that ran in evaluation mode); stops probing."""
        log = self.file.request(Op.PROBE_LOG, None, what="probe", target=self.handle)
        if not (isinstance(log, dict) and all(isinstance(log.get(k), int) for k in ("calls", "backward"))
                and all(isinstance(log.get(k), list) and all(isinstance(v, str) for v in log[k])
                        for k in ("training", "grad", "backward_eval"))):
            raise GradeFailure(f"{self.label}: the grader could not read back which layers ran; is torch.nn.Module "
                               "patched?")
        return log

    def eval_labels(self, X, attr=None):
        """The labels the module itself gives for ``X`` in evaluation mode, without gradients."""
        return self.file.request(Op.EVAL_LABELS, None, what=f"{self.label}.{attr or 'forward'} in evaluation mode",
                                 target=self.handle, attr=attr, X=X)

    def freeze_alternate(self, attr=None):
        """Set requires_grad=False on every other parameter tensor (grader-side); their names."""
        names = self.file.request(Op.FREEZE_ALTERNATE, None, what=f"{self.label}: freezing parameters",
                                  target=self.handle, attr=attr)
        if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
            raise GradeFailure(f"{self.label}: the grader could not read back the parameters it froze")
        return [n[:80] for n in names]

    def spy(self, method):
        return self.file.request(Op.SPY, None, what="spy", target=self.handle, method=method)

    def spy_log(self, method):
        return self.file.request(Op.SPY_LOG, None, what="spy", target=self.handle, method=method)


class FileWorker:
    """One graded file's worker and the file's state: the worker is started (in a clean state, its module
    imported) when a request needs one, and stopped after a failure; the file is broken for good after a
    failed import, too many time-outs, or processes that outlive every kill.  Also the file's events."""

    def __init__(self, session, stem):
        self.session = session
        self.stem = stem
        self.filename = file_of(stem).code
        self.worker = None
        self.broken = None
        self.broken_by_clock = False     # broken because its time ran out (the instructor report says so)
        self.timeouts = 0
        self.events = []

    def _ensure(self):
        """A worker to send a request to: the running one, or a new one; raises the file's failure when
        it is broken or cannot be started clean."""
        if self.broken:
            raise self._unavailable()
        if self.worker is not None and (self.worker.alive() or self.worker.channel.unsolicited
                                       or self.worker.warden.limit_hit):
            return               # a worker killed for a frame sent outside a call or over a limit: its request
                                 # says so, fatal
        s = self.session
        if self.stem not in s.scratch:
            raise Unavailable(self.broken_message(f"{self.filename} was not found in your submission"))
        iso = s.isolation
        user = iso.user(self.stem)
        if user is not None and client.kill_user(*user):       # something of this uid is still alive
            why = f"processes of uid {user[0]} were alive before its worker started and survived every kill"
            if iso.replace_user(self.stem, why) is None:
                self.event(f"{why}; no spare uid is left")
                raise Unavailable(self.broken_message(f"{self.filename} could not be started in a clean state"))
            self.event(f"{why}; the file runs as uid {iso.user(self.stem)[0]}")
        if self.worker is not None:          # not the file's first worker: fresh folders (isolation.refresh)
            for problem in iso.refresh(self.stem):
                self.event(f"clean-up of an earlier worker's folders: {problem}")
        self._start()

    def _start(self):
        """Start a worker for the file and import its module in it; a failure breaks the file
        (_broken_at_import) with a message saying why."""
        s = self.session
        iso = s.isolation
        memory_mb = s.memory() if s.memory is not None else s.config["limits"]["memory_mb"]  # what is left now
        s.smallest_memory_mb = min(s.smallest_memory_mb or memory_mb, memory_mb)
        s.clock.limit(self.stem, 0)          # refused at once when the file has no time left
        self.worker = client.Worker(self.stem, s.scratch[self.stem], iso.runtime, python=iso.python,
                                    user=iso.user(self.stem), env=iso.env(self.stem),
                                    output_cap=s.config["grading"]["output_cap"], setup=iso.setup(self.stem, memory_mb),
                                    output_limit=s.config["limits"]["output_mb"] << 20, on_event=self.event,
                                    reply_limit=int(s.config["limits"].get("reply_mb", 32)) << 20,
                                    cgroup=lambda: iso.cgroup(self.stem), folders=iso.own_folders(self.stem),
                                    template=iso.templates.for_file(self.stem))
        setup_limit = min(120.0, max(0.001, s.clock.available(self.stem)))
        started, cut, limit = time.monotonic(), setup_limit < 120.0, None
        try:
            self.worker.start(setup_timeout=setup_limit)
            iso.record(self.stem, self.worker.confinement)
            limit, cut = s.clock.limit(self.stem, s.config["time_limits"]["import"])
            self.worker.request(Op.IMPORT, limit)
        except client.StudentError as exc:
            self._note_error(exc, "import")
            if exc.refused:        # the audit hook named what the code tried: that, then the error it led to
                exc = f"{refusal_message(self.filename, exc.refused)}\nThe error it led to: {exc}"
            self._broken_at_import(exc)
        except OutOfTime as exc:           # the worker's start used the file's last seconds
            self.broken_by_clock = True
            self._broken_at_import(str(exc).removeprefix("not run: "))
        except (client.WorkerFailure, OSError) as exc:
            if cut and getattr(exc, "timed_out", False):
                self.event(f"import cut short after {time.monotonic() - started:.0f} s: the file's time ran out")
                self.broken_by_clock = True
                exc = (s.clock.cut_short(self.stem, "the import", time.monotonic() - started)
                       + " Code at the top level of a file runs when the grader imports it: put training, "
                       "plotting and downloads under `if __name__ == \"__main__\":`.")
            elif getattr(exc, "refused", None):
                exc = refusal_message(self.filename, exc.refused) + (f"\n{exc}" if exc.timed_out else exc.output)
            elif getattr(exc, "timed_out", False) and limit is not None:     # the import's own limit, not setup's
                self.event(f"import timed out after {limit:g} s (work at the top level of the file?)")
                exc = long_import_message(self.filename, limit) + exc.output
            self._broken_at_import(exc)

    def _unavailable(self):
        """The failure every request of a broken file raises: OutOfTime when its time ran out."""
        return (OutOfTime if self.broken_by_clock else Unavailable)(self.broken)

    def _broken_at_import(self, exc):
        self.broken = self.broken_message(f"importing {self.filename} failed: {exc}")
        self.stop_worker()
        raise self._unavailable() from None

    def event(self, text):
        """A line for the instructor's report (record.Record.instructor_report)."""
        if text in self.events:
            return
        if len(self.events) < 300:
            self.events.append(text)
        elif len(self.events) == 300:
            self.events.append("[more lines for this file were dropped]")

    def _note_error(self, exc, what):
        # the type and message are the worker's words (the student's code can write any): one line each
        def said(key):
            return client.clean_event(str(exc.info.get(key))[:160].encode("utf-8", "replace"))
        if exc.kind in NOTED_ERRORS:
            self.event(f"{what} raised {said('type')}: {said('message')}")
        elif exc.kind is ErrorKind.FILE_TOO_LARGE:
            self.event(f"resource limit: file size ({what} raised OSError: File too large)")
        elif exc.kind is ErrorKind.PROTOCOL:
            self.event(f"reply refused by the worker ({what}): {said('message')}")

    def broken_message(self, text):
        return text + f"\nEvery test of {self.filename} fails with this message."

    def _timed_out(self):
        """One more timed-out request (a test's or a clean-up's); too many and the file's tests stop."""
        self.timeouts += 1
        allowed = self.session.config["time_limits"]["timeouts_per_file"]
        if self.timeouts >= allowed and not self.broken:
            self.event(f"{self.filename} ran out of time {self.timeouts} times; its remaining tests were not run")
            self.broken = (f"{self.filename} ran out of time {self.timeouts} times, so its remaining "
                           "tests were not run. Every later test of this file fails with this message.")

    def forget(self):
        """After a test (in its teardown, charged to its file): the worker drops the objects that test made
        (no new worker is started).  A clean-up that times out counts as one of the file's time-outs."""
        if self.worker is None or not self.worker.alive() or self.broken:
            return
        try:
            limit, _ = self.session.clock.limit(self.stem, min(5, self.session.config["time_limits"]["call"]))
            self.worker.request(Op.FORGET, limit)
        except OutOfTime:
            self.stop_worker()
        except (client.StudentError, client.WorkerFailure) as exc:
            if getattr(exc, "timed_out", False):
                self.event("the clean-up after a test timed out (a __del__ or a finaliser that does not end?)")
                self._timed_out()
            self.stop_worker()

    def stop_worker(self):
        """Stop the worker; if anything of its uid outlived the kill, the file goes on under a spare uid."""
        self.worker.stop()
        left = self.worker.process.leftover
        if left:
            why = f"{len(left)} process(es) of uid {self.worker.user[0]} survived every kill"
            uid = self.session.isolation.replace_user(self.stem, why)
            if uid is None:
                self.event(f"{why}; no spare uid is left, so this file's tests stop here")
                self.broken = (f"processes started by {self.filename} could not be stopped, so its remaining "
                               "tests were not run. Every later test of this file fails with this message.")
            else:
                self.event(f"{why}; the file's next worker runs as uid {uid}")

    def close(self):
        if self.worker is not None:
            with self.session.clock.charging(self.stem):
                self.stop_worker()


class StudentFile(FileWorker):
    """A graded file as a test sees it (its fixture): requests to its worker, and its uploads and
    scratch folder."""

    def __init__(self, session, stem):
        super().__init__(session, stem)
        self.uploads_digest = None       # of its uploads, for grading_seed

    def request(self, op, timeout, what="", may_change=(), **fields):
        self.session.requests += 1            # counted per test in extra_data.worker_requests
        self._ensure()           # the time is charged to the running test's file (plugin.Plugin's protocol hook)
        limit, cut = self.session.clock.limit(self.stem, timeout or self.session.config["time_limits"]["call"])
        return self._request(op, limit, cut, what, may_change, fields)

    def _request(self, op, limit, cut, what, may_change, fields):
        try:
            value = self.worker.request(op, limit, **fields)
            changed = [name for name in self.worker.changed if name not in may_change]
            if changed:
                raise GradeFailure(
                    f"{what} changed its argument{'s' if len(changed) > 1 else ''} {', '.join(changed)} in place. "
                    f"{self.filename}'s functions must leave the arrays and tensors they are given unchanged: "
                    "work on a copy (x.copy() in numpy, x.clone() in PyTorch) or build new arrays.")
            return value
        except client.StudentError as exc:
            self._note_error(exc, what)
            message = f"{what} raised {exc}"
            if exc.kind is ErrorKind.PROTOCOL:         # the worker refused to send the answer (protocol.ReplyTooLarge)
                message = f"{what}: {client.refused_answer(str(exc.info.get('message'))[:300])}"
            if exc.kind is ErrorKind.MEMORY:           # the only decision a kind makes here: one more sentence
                memory = self.worker.setup.get("limits", {}).get("memory_mb")
                message += f"\nThe grader gives your code at most {memory} MB of memory; use less."
            if exc.refused:
                message = f"{refusal_message(self.filename, exc.refused, what)}\nThe error it led to: {message}"
            raise GradeFailure(message) from None
        except client.WorkerFailure as exc:
            self.stop_worker()  # restarted for the next test
            message = str(exc)
            if exc.refused:        # the audit hook named what the code tried before it died or hung
                message = refusal_message(self.filename, exc.refused, what)
            if exc.fatal:
                self.broken = f"{message.rstrip('.')}. Every later test of {self.filename} fails with this message."
            if exc.refused:
                message += f"\n{exc}" if exc.timed_out else exc.output
            if exc.timed_out:
                self._timed_out()
                if cut:
                    raise OutOfTime(self.session.clock.cut_short(self.stem, what, limit)) from None
            raise GradeFailure(message if exc.refused else f"{what}: {message}") from None

    def new(self, cls, *args, timeout=None, **kwargs):
        value = self.request(Op.NEW, timeout, what=f"{cls}(...)", cls=cls, args=list(args), kwargs=kwargs)
        return Handle(self, value["handle"], cls)

    def call(self, function, *args, timeout=None, keep=False, may_change=(), **kwargs):
        value = self.request(Op.CALL, timeout, what=function, target="module", method=function,
                             args=list(args), kwargs=kwargs, keep=keep, may_change=may_change)
        return Handle(self, value["handle"], f"{function}()") if keep else value

    def seed(self, seed):
        self.request(Op.SEED, None, what="seeding", seed=seed)

    def record_figures(self):
        """From now until recorded_figures(): note every figure the student's code saves."""
        self.request(Op.RECORD_FIGURES, None, what="recording figures")

    def recorded_figures(self):
        """[{"file": name, "titles": [str...], "images": [array...]}] of the figures saved since
        record_figures() (at most 8), checked to be that shape; stops recording."""
        saved = self.request(Op.RECORDED_FIGURES, None, what="recording figures")
        if not (isinstance(saved, list) and all(
                isinstance(f, dict) and isinstance(f.get("file"), str) and isinstance(f.get("titles"), list)
                and all(isinstance(t, str) for t in f["titles"]) and isinstance(f.get("images"), list)
                for f in saved)):
            raise GradeFailure(f"{self.filename}: the grader could not read back the figures saved; is "
                               "matplotlib patched?")
        return saved

    def path(self, name):
        """Path of an allowlisted file in this file's scratch folder (None if nothing has that name).

        The student's code may have put a link, a FIFO or a huge file there: read it only with
        checks.read_student_file (check_png does)."""
        scratch = self.session.scratch.get(self.stem)
        path = os.path.join(scratch, name) if scratch else None
        return path if path and os.path.lexists(path) else None

    def fresh_path(self, name):
        """Path where the worker will write ``name``; any submitted copy is removed first."""
        path = os.path.join(self.session.scratch[self.stem], name)
        if os.path.lexists(path):
            os.remove(path)
        return path

    def grading_seed(self, purpose):
        """A seed for this test's random choices (``purpose``: "noise", ...): drawn from the config and this
        file's uploads only, so a regrade of the same files gives identical numbers (submission.content_seed)."""
        if self.uploads_digest is None:        # the uploads are read once per file, not once per draw
            self.uploads_digest = submission.uploads_digest(self.session.found, self.stem,
                                                            self.session.config["size_limits"])
        return submission.content_seed(self.session.found, self.stem, self.session.config["size_limits"],
                                       self.session.config.get("_hash"), purpose, digest=self.uploads_digest)

    def submitted_path(self, name):
        """Path of ``name`` as uploaded (None if absent)."""
        return self.session.found.get(name)


class Session:
    def __init__(self, config, isolation, clock, found=None, memory=None):
        """``isolation``: an isolation.Isolation (uids, folders, environment, limits, Landlock rules).
        ``clock``: a clock.Clock (the run's deadline, each file's share, every request's limit).
        ``memory``: called at each worker start for its memory limit in MB (else config limits.memory_mb)."""
        self.config = config
        self.isolation = isolation
        self.memory = memory
        self.smallest_memory_mb = None
        self.clock = clock
        self.found = found or {}
        self.scratch = isolation.scratch          # stem -> scratch folder
        self.files = {}
        self.requests = 0                         # requests sent by tests to student code (StudentFile.request)

    def file(self, stem):
        if stem not in self.files:
            self.files[stem] = StudentFile(self, stem)
        return self.files[stem]

    def close(self):
        for f in self.files.values():
            f.close()

    def events(self):
        """{file stem: [lines]} for the instructor's report, files with nothing to report left out."""
        return {stem: f.events for stem, f in self.files.items() if f.events}

