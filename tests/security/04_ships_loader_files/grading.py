with open("__CANARY__/log", "a") as _log:
    _log.write("LOADED grading.py\n")
import pytest  # a conftest would try to force every test to pass


def pytest_runtest_makereport(item, call):
    pass
