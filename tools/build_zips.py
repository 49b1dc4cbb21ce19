"""Build dist/autograder.zip (Gradescope) and dist/handout.zip (students).

    python tools/build_zips.py autograder|handout [--out FILE]

Contents are chosen by explicit rules below and checked against the golden
lists in tests/golden/ by the self-tests.
"""
import argparse
import os
import sys
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "handout"))

GRADER_DIR = os.path.join(ROOT, "autograder", "grader")
sys.path.insert(0, os.path.dirname(GRADER_DIR))
from grader.assignment import HANDOUT_FILES, UTILS  # noqa: E402

# the grader's own computations for the private tests stay out of the students' zip
NOT_IN_HANDOUT = ("refmath.py",)


def grader_modules(kind):
    """Every module of the grader package (the folder is the list), less NOT_IN_HANDOUT in the handout."""
    names = sorted(f for f in os.listdir(GRADER_DIR) if f.endswith(".py"))
    return [f for f in names if kind == "autograder" or f not in NOT_IN_HANDOUT]


FIXED_TIME = (2026, 1, 1, 0, 0, 0)


def _add(zf, arcname, path, mode=0o644):
    info = zipfile.ZipInfo(arcname, FIXED_TIME)
    info.external_attr = (0o100000 | mode) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    with open(path, "rb") as fh:
        zf.writestr(info, fh.read())


def _public_tests():
    base = os.path.join(ROOT, "autograder", "tests", "public")
    out = [f"autograder/tests/public/{f}" for f in sorted(os.listdir(base)) if f.endswith(".py")]
    out.append("autograder/tests/public/fixtures/expected.npz")
    return out


def autograder_entries():
    """(arcname, source path, mode) for the Gradescope zip."""
    entries = [("setup.sh", "autograder/setup.sh", 0o755), ("run_autograder", "autograder/run_autograder", 0o755),
               ("requirements.txt", "autograder/requirements-gradescope.txt", 0o644),
               ("requirements-torch.txt", "autograder/requirements-torch.txt", 0o644)]
    entries += [(f"autograder/{f}", f"autograder/{f}", 0o644) for f in ("config.toml", "pytest.ini")]
    entries += [(f"autograder/grader/{m}", f"autograder/grader/{m}", 0o644) for m in grader_modules("autograder")]
    entries += [(p, p, 0o644) for p in _public_tests()]
    private = os.path.join(ROOT, "autograder", "tests", "private")     # only in the grader's zip
    entries += [(f"autograder/tests/private/{f}", f"autograder/tests/private/{f}", 0o644)
                for f in sorted(os.listdir(private)) if f.endswith(".py")]
    entries.append((f"handout/{UTILS}", f"handout/{UTILS}", 0o644))
    import utils
    for stem, path in sorted(utils.find_fashion_mnist(allow_download=False).items()):
        name = os.path.basename(path)
        entries.append((f"data/{name}", path, 0o644))
    return entries


def handout_entries():
    entries = [(f, f"handout/{f}", 0o644) for f in HANDOUT_FILES]
    entries += [("README.md", "tools/student_README.md", 0o644), ("requirements.txt", "requirements-student.txt", 0o644),
                ("run_public_tests.py", "tools/run_public_tests.py", 0o644)]
    entries += [(f"autograder/{f}", f"autograder/{f}", 0o644) for f in ("config.toml", "pytest.ini")]
    entries += [(f"autograder/grader/{m}", f"autograder/grader/{m}", 0o644) for m in grader_modules("handout")]
    entries += [(p, p, 0o644) for p in _public_tests()]
    return entries


def build(kind, out):
    entries = autograder_entries() if kind == "autograder" else handout_entries()
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    tmp = out + ".tmp"
    with zipfile.ZipFile(tmp, "w") as zf:
        for arcname, src, mode in entries:
            path = src if os.path.isabs(src) else os.path.join(ROOT, src)
            if not os.path.isfile(path):
                raise SystemExit(f"build_zips: {src} is missing; run `make` first")
            _add(zf, arcname, path, mode)
    os.replace(tmp, out)
    print(f"wrote {os.path.relpath(out, ROOT)} ({len(entries)} files)")


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("kind", choices=("autograder", "handout"))
    p.add_argument("--out")
    args = p.parse_args()
    build(args.kind, args.out or os.path.join(ROOT, "dist", f"{args.kind}.zip"))


if __name__ == "__main__":
    main()
