#!/usr/bin/env bash
# Headless Chromium for the browser test: Debian's chromium package (Playwright drives it via
# executable_path; its own browser download is blocked on these machines).
set -euo pipefail
if [ ! -x /usr/bin/chromium ]; then
    echo "setup: apt-get install chromium"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
