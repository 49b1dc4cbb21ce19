"""A submission whose every function and method hangs (tools/gradescope_sim.py benchmark):
the run must still end with a final, valid results.json before Gradescope's kill."""
import time


def _hang(*args, **kwargs):
    while True:
        time.sleep(1)


class _Hangs:
    def __init__(self, *args, **kwargs):
        _hang()


def __getattr__(name):
    return _Hangs if name[:1].isupper() else _hang
