"""A numpy_ann.py that spends its whole import limit and stalls the clean-up after every test.

Graded over the reference's other three files (make gradescope-sim OVER=tests/sim/slow_import_stalled_cleanup):
this file loses its own tests to the clock; the three others keep full marks."""
import time

time.sleep(100)          # under the import limit (120 s at one CPU), as top-level training would


class NumpyANN:
    def __init__(self, *args, **kwargs):
        self.W1 = None

    def __del__(self):
        time.sleep(600)      # the clean-up after each test (the worker collects garbage) never ends
