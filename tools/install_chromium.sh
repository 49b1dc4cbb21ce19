#!/bin/sh
# Headless Chromium for tests/test_report.py, which looks at the cohort report as a person would.
# As root with apt: the Debian package chromium when /usr/bin/chromium is missing.  Otherwise a
# note: that test then skips and says why.
if [ -x /usr/bin/chromium ] || command -v chromium >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "chromium: installing the Debian package chromium (tests/test_report.py)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null && exit 0
    echo "chromium: the install failed; tests/test_report.py's browser test will skip" >&2
else
    echo "chromium: not installed and not root with apt-get; tests/test_report.py's browser test will skip" >&2
fi
exit 0
