"""The grader reads a file the student's code could have written without following a link,
without waiting on a FIFO and with a bounded read (checks.read_student_file, check_png)."""
import os
import sys
import threading
import time

import pytest

from conftest import ROOT, SOLUTION

sys.path.insert(0, os.path.join(ROOT, "autograder"))
from grader import checks, session, submission  # noqa: E402

NAME = "pytorch_ann_train_val_metrics.png"
LIMITS = {"default": 4096}
QUICK = 5.0          # seconds: a check that takes longer is taken to block


def png_bytes():
    with open(os.path.join(SOLUTION, NAME), "rb") as fh:
        return fh.read()


def failure_within(seconds, call):
    """The GradeFailure ``call`` raises, or pytest.fail if it passes, raises something else or blocks."""
    out = {}

    def run():
        try:
            call()
            out["result"] = "passed"
        except checks.GradeFailure as exc:
            out["failure"] = exc
        except BaseException as exc:  # noqa: BLE001 - reported below
            out["result"] = repr(exc)
    start = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"the check still had not returned after {seconds} s: it blocks")
    if "failure" not in out:
        pytest.fail(f"the check did not fail: {out.get('result')}")
    return out["failure"], time.monotonic() - start


def test_a_fifo_fails_at_once_and_names_it(tmp_path):
    fifo = tmp_path / NAME
    os.mkfifo(fifo)
    try:
        failure, took = failure_within(QUICK, lambda: checks.check_png(str(fifo), NAME, LIMITS, "the curves"))
    finally:
        try:               # a check that blocked in open() is released, so the test process can end
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            os.close(fd)
        except OSError:
            pass
    assert "a FIFO (named pipe), not a regular file" in str(failure) and NAME in str(failure)
    assert took < 1.0


def test_a_symbolic_link_is_not_followed(tmp_path):
    target = tmp_path / "elsewhere.png"
    target.write_bytes(png_bytes()[:2000] + png_bytes()[-12:])     # a complete small PNG would pass if followed
    link = tmp_path / "scratch" / NAME
    link.parent.mkdir()
    os.symlink(target, link)
    failure, _ = failure_within(QUICK, lambda: checks.check_png(str(link), NAME, LIMITS, "the curves"))
    assert "is a symbolic link" in str(failure) and NAME in str(failure)


def test_a_link_to_a_fifo_neither_blocks_nor_is_followed(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    link = tmp_path / NAME
    os.symlink(fifo, link)
    try:
        failure, took = failure_within(QUICK, lambda: checks.check_png(str(link), NAME, LIMITS, "the curves"))
    finally:
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass
    assert "is a symbolic link" in str(failure)
    assert took < 1.0


def test_an_oversize_file_fails_with_the_limit_and_nothing_large_is_read(tmp_path, monkeypatch):
    path = tmp_path / NAME
    data = png_bytes()
    with open(path, "wb") as fh:           # sparse: 3 GB on paper, the PNG's own head and tail
        fh.write(data[:1000])
        fh.seek(3 << 30)
        fh.write(data[-12:])
    reads = []
    real_pread = os.pread
    monkeypatch.setattr(os, "pread", lambda fd, n, off: reads.append(n) or real_pread(fd, n, off))
    failure, _ = failure_within(QUICK, lambda: checks.check_png(str(path), NAME, LIMITS, "the curves"))
    assert f"is {(3 << 30) + 12:,} bytes, over the grader's limit of 4,096 bytes" in str(failure)
    assert reads == []
    # within a larger limit the same file is read in two pieces of at most 33 bytes
    assert checks.check_png(str(path), NAME, {"default": 4 << 30}, "the curves")[0] > 0
    assert reads and max(reads) <= 33


def test_a_regular_png_within_the_limit_passes(tmp_path):
    path = tmp_path / NAME
    path.write_bytes(png_bytes())
    assert checks.check_png(str(path), NAME, {"default": len(png_bytes())}) == (1000, 400)
    failure, _ = failure_within(QUICK, lambda: checks.check_png(str(path), NAME, {"default": 100}))
    assert "over the grader's limit of 100 bytes" in str(failure)


def test_a_folder_in_place_of_the_file_is_named(tmp_path):
    (tmp_path / NAME).mkdir()
    failure, _ = failure_within(QUICK, lambda: checks.check_png(str(tmp_path / NAME), NAME, LIMITS))
    assert NAME in str(failure) and ("a folder" in str(failure) or "could not be opened" in str(failure))


def test_the_scratch_path_reports_what_is_there_so_the_check_can_name_it(tmp_path):
    """StudentFile.path gives a FIFO or a link as it is (os.path.isfile would call a FIFO 'not found')."""
    os.mkfifo(tmp_path / NAME)
    holder = session.StudentFile.__new__(session.StudentFile)
    holder.session = type("S", (), {"scratch": {"pytorch_ann": str(tmp_path)}})()
    holder.stem = "pytorch_ann"
    assert holder.path(NAME) == str(tmp_path / NAME)
    assert holder.path("absent.png") is None


def test_copying_an_upload_takes_only_a_regular_file_within_the_limit(tmp_path):
    """submission.copy_capped opens as check_png does: a link, a FIFO or an oversize file is not copied."""
    good = tmp_path / "good.png"
    good.write_bytes(png_bytes()[:100])
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    link = tmp_path / "link.png"
    os.symlink(good, link)
    assert submission.copy_capped(str(good), str(tmp_path / "copy"), 100)
    assert (tmp_path / "copy").read_bytes() == png_bytes()[:100]
    results = {}
    worker = threading.Thread(target=lambda: results.update(
        (name, submission.copy_capped(str(src), str(tmp_path / f"out-{name}"), limit))
        for name, src, limit in (("fifo", fifo, 100), ("link", link, 100), ("large", good, 99))), daemon=True)
    worker.start()
    worker.join(QUICK)
    try:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass
    assert not worker.is_alive(), "copy_capped blocked"
    assert results == {"fifo": False, "link": False, "large": False}
    assert not any(p.name.startswith("out-") for p in tmp_path.iterdir())


def test_content_seed_depends_on_the_uploads_the_config_and_the_purpose_only(tmp_path):
    (tmp_path / "fashionmnist.py").write_text("x = 1\n")
    (tmp_path / "fmnist.pth").write_bytes(b"weights")
    (tmp_path / "numpy_ann.py").write_text("y = 2\n")
    found = {name: str(tmp_path / name) for name in os.listdir(tmp_path)}

    def seed(config_hash="h", purpose="noise", stem="fashionmnist"):
        return submission.content_seed(found, stem, LIMITS, config_hash, purpose)
    first = seed()
    assert seed() == first and isinstance(first, int)
    assert len({first, seed(config_hash="other"), seed(purpose="sample"), seed(stem="numpy_ann")}) == 4
    (tmp_path / "numpy_ann.py").write_text("y = 3\n")          # another file's upload: no change
    assert seed() == first
    (tmp_path / "fmnist.pth").write_bytes(b"weighty")           # one of its own uploads: new numbers
    assert seed() != first
    os.remove(tmp_path / "fmnist.pth")
    os.symlink(tmp_path / "fashionmnist.py", tmp_path / "fmnist.pth")   # a link is read as absent
    linked = seed()
    os.remove(tmp_path / "fmnist.pth")
    assert linked == seed() != first
