"""Real-style submissions (tests/real_style/<submission>/, see the README there): numpy_ann.py, pytorch_ann.py
and pytorch_cnn.py written by hand the way students hand this assignment in, each correct against its
docstrings.  Every file must get full marks on every test of its file (tools/variants.py real_style: each
file graded alone with the CHEAP budgets, from the grading cache while nothing it depends on changes).

Which submission shows which trait (TRAITS checks that the files still do):
- real1_index_loops: the original interface, one-hot targets everywhere (``accuracy`` compares
  ``predict(X)`` with ``y.argmax(dim=1)`` / ``np.argmax(y_true, axis=1)``); index-based mini-batches
  (``range(0, N, batch_size)``, shuffled with ``torch.randperm`` where the docstrings ask for shuffling);
  a progress line printed per epoch; an if/elif judgement on the recorded accuracies.
- real2_dataloader_cuda_crlf: ``torch.device("cuda" if torch.cuda.is_available() else "cpu")`` at module
  level, ``.to(device)`` on the model and on every batch; ``TensorDataset`` / ``DataLoader(shuffle=True)``;
  CRLF line endings in the whole of numpy_ann.py and pytorch_cnn.py; helper methods of its own; the loss on
  class indices (``targets.argmax(dim=1)``); no prints (its doctests pass).
- real3_permutation_np_argmax: manual shuffling with ``np.random.permutation``; ``predict`` that calls
  ``np.argmax`` on a tensor (PyTorchANN) and on ``.numpy()`` of one (PyTorchCNN); module-level helper
  functions; ``report_my_judgement`` computed from the recorded metrics by a helper of its own; full-batch
  CNN training (the original assignment) with the training-mode loss recorded; an accuracy that is a 0-dim
  tensor; progress prints; its own ``if __name__ == "__main__":`` block that trains.
"""
import ast
import os
import re

import pytest

from conftest import ROOT
from test_variants import run_variants

REAL_STYLE = os.path.join(ROOT, "tests", "real_style")
FILES = ("numpy_ann.py", "pytorch_ann.py", "pytorch_cnn.py")


def submissions():
    return sorted(d for d in os.listdir(REAL_STYLE) if os.path.isdir(os.path.join(REAL_STYLE, d)))


def read(submission, name):
    with open(os.path.join(REAL_STYLE, submission, name), "rb") as fh:
        return fh.read()


def every_line_crlf(raw):
    return raw.count(b"\n") > 0 and raw.count(b"\n") == raw.count(b"\r\n")


# trait -> [(submission, file, regular expression its text must match, or a test of its bytes)]
TRAITS = {
    "one-hot accuracy, the original interface": [
        ("real1_index_loops", "pytorch_ann.py", r"predictions == y\.argmax\(dim=1\)"),
        ("real1_index_loops", "pytorch_cnn.py", r"predictions == y\.argmax\(dim=1\)"),
        ("real1_index_loops", "numpy_ann.py", r"np\.argmax\(y_true, axis=1\)")],
    "device selection and .to(device)": [
        (s, f, r'torch\.device\("cuda" if torch\.cuda\.is_available\(\) else "cpu"\)[\s\S]*\.to\(device\)')
        for s, f in (("real2_dataloader_cuda_crlf", "pytorch_ann.py"), ("real2_dataloader_cuda_crlf", "pytorch_cnn.py"))],
    "CRLF line endings in a whole file": [("real2_dataloader_cuda_crlf", "numpy_ann.py", every_line_crlf),
                                          ("real2_dataloader_cuda_crlf", "pytorch_cnn.py", every_line_crlf)],
    "judgement from the recorded metrics": [
        ("real1_index_loops", "pytorch_ann.py", r'self\.train_val_metrics\["train_accs"\]\[-1\]'),
        ("real3_permutation_np_argmax", "pytorch_ann.py", r'judgement = judge\(self\.train_val_metrics\)'),
        ("real3_permutation_np_argmax", "pytorch_cnn.py", r'values\[-1\] for key, values in self\.train_val_metrics')],
    "np.argmax on a tensor in predict": [
        ("real3_permutation_np_argmax", "pytorch_ann.py", r"labels = torch\.as_tensor\(np\.argmax\(out, axis=1\)\)"),
        ("real3_permutation_np_argmax", "pytorch_cnn.py", r"np\.argmax\(logits\.numpy\(\), axis=1\)")],
    "prints per epoch": [(s, f, r"\n {12}print\(") for s in ("real1_index_loops", "real3_permutation_np_argmax")
                         for f in FILES],
    "index-based mini-batches": [("real1_index_loops", f, r"for i in range\(0, N, (self\.)?batch_size\)")
                                 for f in FILES],
    "TensorDataset and a shuffling DataLoader": [
        (s, f, r"DataLoader\(torch\.utils\.data\.TensorDataset\(X_train, y_train\),\s+batch_size=\w+, shuffle=True\)")
        for s, f in (("real2_dataloader_cuda_crlf", "pytorch_ann.py"), ("real2_dataloader_cuda_crlf", "pytorch_cnn.py"))],
    "manual shuffling with np.random.permutation": [
        ("real3_permutation_np_argmax", "pytorch_ann.py", r"perm = np\.random\.permutation\(n_samples\)")],
    "helper functions of their own": [
        ("real2_dataloader_cuda_crlf", "pytorch_cnn.py", r"def _loss_and_acc\(self"),
        ("real3_permutation_np_argmax", "numpy_ann.py", r"\ndef two_layer_pass\("),
        ("real3_permutation_np_argmax", "pytorch_cnn.py", r"\ndef conv_block\(")],
    "an if __name__ block that trains": [
        ("real3_permutation_np_argmax", f, r'if __name__ == "__main__":\n    #[^\n]*\n    if "--quick" in sys\.argv:'
                                           r'[\s\S]*\.train\(') for f in FILES],
}


def test_the_real_style_submissions_show_their_traits():
    """Each trait of the module docstring is where it says, so that nobody tidies a trait away unnoticed; no
    file uses tqdm."""
    assert submissions() == ["real1_index_loops", "real2_dataloader_cuda_crlf", "real3_permutation_np_argmax"]
    missing = []
    for trait, places in TRAITS.items():
        for submission, name, check in places:
            raw = read(submission, name)
            text = raw.decode("utf-8").replace("\r\n", "\n")
            found = check(raw) if callable(check) else re.search(check, text)
            if not found:
                missing.append((trait, submission, name))
    assert missing == []
    assert [(s, f) for s in submissions() for f in FILES if b"tqdm" in read(s, f)] == []


def interface(tree):
    """{qualified name: (arguments, decorators, docstring)} of the module's functions and methods."""
    found = {}
    for node in tree.body:
        members = [(f"{node.name}.", n) for n in node.body] if isinstance(node, ast.ClassDef) else [("", node)]
        for prefix, fn in members:
            if isinstance(fn, ast.FunctionDef):
                found[prefix + fn.name] = (ast.dump(fn.args), [ast.unparse(d) for d in fn.decorator_list],
                                           ast.get_docstring(fn))
    return found


@pytest.mark.parametrize("name", FILES)
def test_real_style_files_keep_the_handout_interface(name):
    """As a student who filled in the handout leaves it: every function of the stub with its signature,
    decorators and docstring, every code block's markers, no NotImplementedError left."""
    with open(os.path.join(ROOT, "handout", name), encoding="utf-8") as fh:
        stub = fh.read()
    want = interface(ast.parse(stub))
    for submission in submissions():
        text = read(submission, name).decode("utf-8")
        got = interface(ast.parse(text))
        assert {k: got.get(k) for k in want} == want, f"{submission}/{name}"
        for marker in ("# >>> YOUR CODE HERE >>>", "# <<< END OF YOUR CODE <<<"):
            assert text.count(marker) == stub.count(marker) > 0, f"{submission}/{name}: {marker}"
        assert "NotImplementedError" not in text, f"{submission}/{name}"


@pytest.mark.duration(110)       # cold: 90 and 128 s, 150 and 190 CPU-seconds (2026-12-05); warm: 0.1 s
def test_every_real_style_file_gets_full_marks(tmp_path):
    """Each real-style file, graded alone with the CHEAP budgets, earns every point of every test of its file;
    a lost point is reported as submission/file: test: the grader's message."""
    proc, rows = run_variants("real_style", tmp_path)
    graded = sorted((r["submission"], r["file"]) for r in rows)
    assert graded == [(s, f[:-3]) for s in submissions() for f in FILES]
    lost = [f"{r['submission']}/{r['file']}.py: {test}: {message[:400]}"
            for r in rows for test, message in r["messages"].items()]
    assert lost == [], "real-style files lost points:\n" + "\n".join(lost)
    assert [r["name"] for r in rows if r["training"] != "graded" or r["max"] <= 0] == []
    for name in FILES:      # every submission met the same tests: none was left out
        assert len({(r["tests"], r["max"]) for r in rows if r["file"] == name[:-3]}) == 1, name
    assert proc.returncode == 0, proc.stdout[-3000:]
