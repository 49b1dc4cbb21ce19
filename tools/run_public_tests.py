"""Run the public autograder tests on the files in this folder.

    python run_public_tests.py            all four files
    python run_public_tests.py numpy_ann  one file

Prints a score table and writes public_results.json.  These are exactly the
public tests Gradescope runs; hidden tests run only on Gradescope.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "autograder"))

from grader import run  # noqa: E402

if __name__ == "__main__":
    files = sys.argv[1:] or ["numpy_ann", "pytorch_ann", "pytorch_cnn", "fashionmnist"]
    sys.exit(run.main(["--submission", HERE, "--results", os.path.join(HERE, "public_results.json"),
                       "--tests", "public", "--files", ",".join(files)]))
