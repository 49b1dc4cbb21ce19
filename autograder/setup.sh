#!/bin/sh
# Gradescope build step: runs once, as root, from /autograder/source, on the
# Ubuntu 22.04 base image (whose python3 is 3.10; the pins need 3.11).
# It builds the venv that run_autograder uses: Python 3.11, CPU-only torch.
#
# Every command runs through `step` (on failure: stop, naming the step) or
# `attempt` (on failure: report it and let the caller try another way), so
# a failed build always exits non-zero with the failing step in the log.
#
# Settings (the defaults are Gradescope's; tests/test_setup_sh.py overrides them):
#   NNAG_SOURCE            folder holding requirements*.txt (default: this script's folder)
#   NNAG_VENV              the venv to build (default /opt/nnag-venv)
#   NNAG_OS_RELEASE        the os-release file (default /etc/os-release)
#   UV_PYTHON_INSTALL_DIR  where a uv-installed Python goes (default /opt/nnag-python;
#                          not under /root, which the unprivileged worker cannot enter)

PIP_VERSION=25.3
UV_VERSION=0.13.9
TORCH_INDEX=https://download.pytorch.org/whl/cpu

SOURCE="${NNAG_SOURCE:-$(cd "$(dirname "$0")" && pwd)}"
VENV="${NNAG_VENV:-/opt/nnag-venv}"
OS_RELEASE="${NNAG_OS_RELEASE:-/etc/os-release}"
UV_PYTHON_INSTALL_DIR="${UV_PYTHON_INSTALL_DIR:-/opt/nnag-python}"
export UV_PYTHON_INSTALL_DIR
# No prompts from apt or pip; no progress bars, version nags or download cache
# in the build log and image; the system pip may install uv despite PEP 668.
export DEBIAN_FRONTEND=noninteractive PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_PROGRESS_BAR=off PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore PIP_BREAK_SYSTEM_PACKAGES=1

say() { echo "setup: $*"; }

# fail NAME STATUS: report the failed step and end the build with its status.
fail() {
    echo "setup: step '$1' failed (exit $2)" >&2
    exit "$2"
}

# step NAME COMMAND...: run COMMAND; if it fails, end the build.
# (COMMAND must not itself call step or attempt: they share $_name.)
step() {
    _name=$1; shift
    say "== $_name"
    "$@" || fail "$_name" "$?"
}

# attempt NAME COMMAND...: run COMMAND; if it fails, report it and return its status.
attempt() {
    _name=$1; shift
    say "== $_name"
    "$@" && return 0
    _status=$?
    echo "setup: step '$_name' failed (exit $_status)" >&2
    return "$_status"
}

apt_install() { apt-get update -qq && apt-get install -y -qq "$@"; }

# need_files FILE...: fail (naming the first missing one) unless all exist.
need_files() {
    for _file in "$@"; do
        [ -f "$_file" ] || { echo "setup: $_file is missing" >&2; return 1; }
    done
}

# The deadsnakes route; stops at the first failure (returning its status).
deadsnakes() {
    attempt "apt-get update" apt-get update -qq &&
        attempt "install software-properties-common (apt)" apt-get install -y -qq software-properties-common &&
        attempt "add the deadsnakes PPA" add-apt-repository -y ppa:deadsnakes/ppa &&
        attempt "install python3.11 from deadsnakes (apt)" apt_install python3.11 python3.11-venv
}

# 0. Where we are; the requirements files must be there before anything is installed.
OS_ID=unknown
OS_NAME=unknown
if [ -r "$OS_RELEASE" ]; then
    # shellcheck disable=SC1090  # os-release is made to be sourced (os-release(5))
    OS_ID=$(. "$OS_RELEASE" && echo "${ID:-unknown}")
    # shellcheck disable=SC1090
    OS_NAME=$(. "$OS_RELEASE" && echo "${PRETTY_NAME:-$OS_ID}")
fi
say "OS $OS_NAME; source $SOURCE; venv $VENV"
step "find the requirements files" need_files "$SOURCE/requirements.txt" "$SOURCE/requirements-torch.txt"

# 1. Python 3.11: the one already here, else deadsnakes (Ubuntu only), else uv.
PY=""
PY_HOW=""
if PY=$(command -v python3.11); then
    PY_HOW="already installed"
elif [ "$OS_ID" = ubuntu ]; then
    if deadsnakes && PY=$(command -v python3.11); then
        PY_HOW="from deadsnakes"
    else
        PY=""
        say "the deadsnakes PPA did not work; falling back to uv"
        # Drop the PPA (if it was added) so that later apt-get updates cannot trip on it.
        add-apt-repository --remove -y ppa:deadsnakes/ppa >/dev/null 2>&1 || true
    fi
else
    say "no python3.11 on $OS_NAME, and the deadsnakes PPA is for Ubuntu only; using uv"
fi
if [ -z "$PY" ]; then
    # uv comes from the system pip (installed first if missing) and downloads a standalone Python.
    if ! python3 -m pip --version >/dev/null 2>&1; then
        step "install python3-pip (apt)" apt_install python3-pip
    fi
    step "install uv (system pip)" python3 -m pip install "uv==$UV_VERSION"
    step "install Python 3.11 with uv" uv python install --no-bin 3.11
    PY=$(uv python find --managed-python 3.11) || fail "find uv's Python 3.11" "$?"
    PY_HOW="from uv"
fi
say "Python 3.11 $PY_HOW ($PY)"

# 2. venv support: Debian and Ubuntu ship ensurepip separately (python3.11-venv).
if ! "$PY" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    attempt "install python3.11-venv (apt)" apt_install python3.11-venv ||
        step "install python3-venv (apt)" apt_install python3-venv
fi

# 3. The venv, outside /autograder/source (which the grader makes root-only), with a pinned pip.
step "create the venv" "$PY" -m venv "$VENV"
VPY="$VENV/bin/python"
step "check the venv's Python is 3.11" "$VPY" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version'
step "pin pip $PIP_VERSION" "$VPY" -m pip install "pip==$PIP_VERSION"

# 4. The PyPI pins first (numpy, matplotlib, pytest), then torch and torchvision
#    alone from PyTorch's CPU index (no CUDA: ~220 MB RSS on import instead of
#    ~650 MB); numpy and pillow are then already there, so only torch's own
#    dependencies come from that index.
step "install requirements (PyPI)" "$VPY" -m pip install -r "$SOURCE/requirements.txt"
step "install torch (CPU index)" "$VPY" -m pip install --index-url "$TORCH_INDEX" -r "$SOURCE/requirements-torch.txt"

# 5. Show what was installed (also when the check fails), then check it is consistent.
step "pip freeze" "$VPY" -m pip freeze
step "pip check" "$VPY" -m pip check

# 6. The unprivileged worker user must be able to read and run it all.
step "make the venv world-readable" chmod -R a+rX "$VENV"
if [ "$PY_HOW" = "from uv" ]; then
    step "make uv's Python world-readable" chmod -R a+rX "$UV_PYTHON_INSTALL_DIR"
fi
# 7. The test labels shipped in the zip: root only (run_autograder locks all of the source again).
if [ -d "$SOURCE/data" ]; then
    step "make the grading data root-only" chmod -R go-rwx "$SOURCE/data"
fi
say "done: $VENV ($("$VPY" --version 2>&1))"
