#!/bin/sh
# Create the virtual environment $1 with the pinned requirements.
# It is built from Debian's /usr/bin/python3 when there is one, so that an
# unprivileged worker user can run it (pyenv's python lives under /root).
set -e
VENV="${1:-.venv}"
BASE="${PYTHON_BASE:-}"
if [ -z "$BASE" ]; then
    if [ -x /usr/bin/python3 ]; then BASE=/usr/bin/python3; else BASE=python3; fi
fi
if ! "$BASE" -c 'import sys; assert sys.version_info[:2] >= (3, 11)' 2>/dev/null; then
    echo "make_venv: $BASE is not Python >= 3.11; set PYTHON_BASE=/path/to/python3.11" >&2; exit 1
fi
if ! "$BASE" -c 'import ensurepip, venv' 2>/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    else
        echo "make_venv: $BASE cannot create virtual environments; install python3-venv" >&2; exit 1
    fi
fi
"$BASE" -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check -r requirements.txt 2>&1 | grep -v "is ignored: it is neither a file nor a directory" || true
test -x "$VENV/bin/shellcheck" && "$VENV/bin/python" -c "import numpy, torch, torchvision, sklearn, matplotlib, pytest, yaml, distributed, copydetect" \
    || { echo "make_venv: the install into $VENV failed (see above)" >&2; exit 1; }
