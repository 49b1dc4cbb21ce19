#!/bin/sh
# Gradescope build step (runs once, as root, on Ubuntu 22.04).
# Ubuntu 22.04's python3 is 3.10; the pins need 3.11, from the deadsnakes PPA.
set -e
apt-get update -qq
apt-get install -y -qq software-properties-common >/dev/null
add-apt-repository -y ppa:deadsnakes/ppa >/dev/null
apt-get update -qq
apt-get install -y -qq python3.11 python3.11-venv >/dev/null
# The venv lives outside /autograder/source, which the grader makes root-only,
# so the unprivileged worker user ("nobody") can still run it.
python3.11 -m venv /opt/nnag-venv
/opt/nnag-venv/bin/pip install -q --upgrade pip
/opt/nnag-venv/bin/pip install -q -r /autograder/source/requirements.txt
chmod -R a+rX /opt/nnag-venv
