"""What a test adds to its own record besides its verdict: the ``feedback`` fixture.

A test writes notes (shown whether it passes or fails), extra_data entries, a line of the
instructor report, a leaderboard entry, and, for an accuracy test, the verdict against the file's
threshold with the per-class table.  ``finish`` puts them into the test's record when it ends.
No student code runs here.
"""
import numpy as np

from . import results
from .checks import check_threshold, class_report


class Feedback:
    """What one test adds to its own record besides the verdict (the ``feedback`` fixture).  ``record``: the
    run's record.Record (its config, instructor notes and leaderboard)."""

    def __init__(self, record):
        self.record = record
        self.notes = []
        self.trailer = None
        self.output_format = None
        self.extra_data = {}

    def note(self, text):
        """A line of the test's output, shown whether it passes or fails."""
        self.notes.append(text)

    def details(self, output_format=None, **extra):
        """Gradescope's output_format (e.g. "md") and entries of the test's extra_data."""
        if output_format:
            self.output_format = output_format
        self.extra_data.update(extra)

    def instructor(self, text):
        """A line of the instructor-only report (a hidden 0-point test); never changes a score."""
        self.record.instructor_notes.append(text)

    def leaderboard(self, name, value, order="desc"):
        self.record.leaderboard.append({"name": name, "value": value, "order": order})

    def class_table(self, predicted, labels):
        """The per-class accuracy table and most frequent confusions, after the verdict (markdown), with
        the same numbers as integers in extra_data; config [feedback] turns it off or sets how many
        confusions.  No student code runs here."""
        feedback = self.record.config["feedback"]
        if feedback["per_class"]:
            text, extra = class_report(predicted, labels, feedback["confusions"])
            self.trailer = "Accuracy per class (grader-computed):\n\n" + text
            self.details("md", **extra)

    def accuracy(self, stem, predicted, labels, what, detail, relabel=None):
        """An accuracy test's verdict from the grader's own predictions: the accuracy and the file's
        threshold go into extra_data, the per-class table after the verdict; fails below the threshold
        (partial credit as config [partial_credit] says).  Returns the accuracy.

        ``relabel`` (refmath.Relabelling): the model was trained on the grader's own labelling and
        ``predicted`` are in that numbering; they are mapped back to the true classes here.  Weights that
        predict the true numbers instead did not learn from the targets they were given: the instructor
        report says so."""
        predicted, labels = np.asarray(predicted), np.asarray(labels)
        if relabel is not None:
            as_given = float(np.mean(predicted == relabel.labels(labels)))
            as_true = float(np.mean(predicted == labels))
            if as_true > max(as_given, self.record.config["cutoffs"]["untrained_weights"]):
                self.instructor(f"{stem}: the trained weights predict the true class numbers ({as_true:.3f}), not "
                                f"the grader's relabelled ones they were trained on ({as_given:.3f}): the weights "
                                "do not come from train() on the given data")
            predicted = relabel.true_classes(predicted)
        acc = float(np.mean(predicted == labels))
        threshold = self.record.config["thresholds"][stem]
        self.details(accuracy=round(acc, 6), threshold=threshold, evaluated_images=int(len(labels)))
        self.class_table(predicted, labels)
        self.note(check_threshold(acc, threshold, what, self.record.config, detail))
        return acc

    def finish(self, rec):
        """Fill the record's output: the notes, then the verdict's message, then the trailer."""
        parts = self.notes + ([rec["output"]] if rec["output"] else [])
        if self.extra_data:
            rec.setdefault("extra_data", {}).update(self.extra_data)
        if self.output_format:
            rec["output_format"] = self.output_format
        trailer = [self.trailer] if self.trailer else []
        if rec.get("output_format") == "md":     # a paragraph per part; a line break inside one stays a break
            rec["output"] = "\n\n".join([results.md_escape(p).replace("\n", "  \n") for p in parts] + trailer)
        else:
            rec["output"] = "\n".join(parts + trailer)
