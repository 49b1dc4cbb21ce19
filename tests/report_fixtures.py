"""Synthetic cohorts for tests/test_report.py: submission sources built from solution/ and handout/, and
grade-all exports (results/<id>.json, <id>.state.json, the CSV) written by hand in the shapes grade_all writes."""
import os
import re

from conftest import HANDOUT, SOLUTION

# An independent, correct numpy_ann.py: the handout with each "replace this line" written in another style
# than the reference (loops, helper names, other numpy calls), as a second student would.
INDEPENDENT_NUMPY_ANN = {
    "_relu": "out = z.clip(min=0)",
    "_relu_grad": "out = np.greater(z, 0).astype(float)",
    "_softmax": ("top = z.max(axis=-1)[:, None]\n"
                 "exps = np.exp(z - top)\n"
                 "out = exps / exps.sum(axis=-1)[:, None]"),
    "_cross_entropy": ("n_rows = len(y_true)\n"
                       "picked = np.sum(y_pred * y_true, axis=1)\n"
                       "loss = -np.log(np.maximum(picked, 1e-15)).sum() / n_rows"),
    "_forward": ("hidden_in = np.dot(X, self.W1) + self.b1\n"
                 "hidden_out = self._relu(hidden_in)\n"
                 "final_in = np.dot(hidden_out, self.W2) + self.b2\n"
                 "a2 = self._softmax(final_in)\n"
                 "if training:\n"
                 "    self.z1 = hidden_in\n"
                 "    self.a1 = hidden_out\n"
                 "    self.z2 = final_in\n"
                 "    self.a2 = a2"),
    "_backward": ("count = len(X)\n"
                  "delta_out = (self.a2 - y_true) / count\n"
                  "grad_w2 = np.dot(self.a1.T, delta_out)\n"
                  "grad_b2 = delta_out.sum(axis=0)[None, :]\n"
                  "delta_hidden = np.dot(delta_out, self.W2.T)\n"
                  "delta_hidden = delta_hidden * self._relu_grad(self.z1)\n"
                  "grad_w1 = np.dot(X.T, delta_hidden)\n"
                  "grad_b1 = delta_hidden.sum(axis=0)[None, :]\n"
                  "for name, grad in ((\"W1\", grad_w1), (\"b1\", grad_b1), (\"W2\", grad_w2), (\"b2\", grad_b2)):\n"
                  "    setattr(self, name, getattr(self, name) - self.lr * grad)"),
    "train": ("batches = int(np.ceil(len(X_train) / batch_size))\n"
              "history = self.train_val_metrics\n"
              "for _ in range(epochs):\n"
              "    for b in range(batches):\n"
              "        part = slice(b * batch_size, (b + 1) * batch_size)\n"
              "        self._forward(X_train[part])\n"
              "        self._backward(X_train[part], y_train[part])\n"
              "    out_train = self._forward(X_train, training=False)\n"
              "    out_val = self._forward(X_val, training=False)\n"
              "    history[\"train_losses\"].append(self._cross_entropy(out_train, y_train))\n"
              "    history[\"val_losses\"].append(self._cross_entropy(out_val, y_val))\n"
              "    history[\"train_accs\"].append((out_train.argmax(1) == y_train.argmax(1)).mean())\n"
              "    history[\"val_accs\"].append((out_val.argmax(1) == y_val.argmax(1)).mean())"),
    "predict": "probs = self._forward(X, False)",
    "accuracy": ("guesses = self.predict(X).argmax(axis=1)\n"
                 "acc = float((guesses == y_true.argmax(axis=1)).sum() / len(X))"),
}
# Renamed variables, other comments and spacing: a copy a student disguised.
RENAMES = (("z1", "pre_h"), ("a1", "act_h"), ("z2", "pre_o"), ("a2", "act_o"), ("dz1", "g_h"), ("dz2", "g_o"),
           ("Xb", "bx"), ("yb", "by"), ("clipped", "safe_p"), ("shifted", "stable"), ("probs", "p"), ("m", "count"))


def read(folder, name):
    with open(os.path.join(folder, name), encoding="utf-8") as fh:
        return fh.read()


def independent_numpy_ann():
    text = read(HANDOUT, "numpy_ann.py")
    for func, code in INDEPENDENT_NUMPY_ANN.items():
        line = re.search(rf'^( *)raise NotImplementedError\("NumpyANN\.{func}: [^\n]*$', text, re.M)
        assert line, func
        indent = line.group(1)
        text = text[:line.start()] + "\n".join(indent + c for c in code.split("\n")) + text[line.end():]
    return text


def disguised_copy(code):
    """solution/<code> with variables renamed, its comments reworded and blank lines added."""
    text = read(SOLUTION, code)
    for old, new in RENAMES:
        text = re.sub(rf"\b{old}\b", new, text)
    text = re.sub(r"#(?! (BEGIN|END) SOLUTION)[^\n]*", "# mine", text)
    return text.replace("\n        # END SOLUTION", "\n\n        # END SOLUTION")


def accuracy_extra(accuracy, threshold, per_class):
    """An accuracy test's extra_data as feedback.Feedback writes it: 1000 images a class, ``per_class`` correct
    of each, the errors of class k predicted as class (k + 1) % 10 (class 6 as class 0)."""
    from grader.checks import CLASS_NAMES
    classes = len(CLASS_NAMES)
    matrix = [[0] * classes for _ in range(classes)]
    for k, right in enumerate(per_class):
        matrix[k][k] = right
        matrix[k][0 if k == 6 else (k + 1) % classes] += 1000 - right
    return {"accuracy": accuracy, "threshold": threshold, "evaluated_images": 1000 * classes,
            "class_names": list(CLASS_NAMES), "class_correct": list(per_class), "class_total": [1000] * classes,
            "confusion_matrix": matrix}


def result(files, thresholds, accuracy, failing=(), messages=None, flags=""):
    """A results.json for a submission: per graded file one 1-point public test and the 4-point accuracy test
    (extra_data with the class data); ``failing`` names the public tests that failed, ``accuracy`` gives each
    file's accuracy (below its threshold fails), ``flags`` the instructor report."""
    from grader.results import REPORT_NAME
    tests = []
    for n, stem in enumerate(files, 1):
        failed = stem in failing
        tests.append({"name": f"{stem}: forward has the right shape", "number": f"{n}.1", "max_score": 1.0,
                      "score": 0.0 if failed else 1.0, "status": "failed" if failed else "passed",
                      "output": (messages or {}).get(stem, "") if failed else "", "visibility": "visible",
                      "tags": [stem, "public"], "extra_data": {"seconds": 0.1}})
        acc, thr = accuracy[stem], thresholds[stem]
        per_class = [int(1000 * acc)] * 10
        per_class[6] = max(0, int(1000 * acc) - 250)          # the Shirt class: the one the cohort gets wrong
        passed = acc >= thr
        tests.append({"name": f"{stem}: accuracy threshold", "number": f"{n}.2", "max_score": 4.0,
                      "score": 4.0 if passed else 0.0, "status": "passed" if passed else "failed",
                      "output": f"{stem}: accuracy {acc:.4f}, threshold {thr:.2f}" + ("" if passed else
                                                                                    ": below the threshold"),
                      "visibility": "visible", "tags": [stem, "private"],
                      "extra_data": accuracy_extra(acc, thr, per_class)})
    tests.append({"name": REPORT_NAME, "number": "0.1", "max_score": 0.0, "score": 0.0,
                  "status": "failed" if flags else "passed", "output": flags or "Nothing to report.",
                  "visibility": "hidden", "tags": ["general", "private"]})
    return {"score": sum(t["score"] for t in tests), "execution_time": 10, "output": "", "tests": tests,
            "extra_data": {"grader_version": "1.0.0", "config_hash": "feedfacecafe0001"}}
