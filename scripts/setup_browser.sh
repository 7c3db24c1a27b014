#!/usr/bin/env bash
# Headless Chromium for the browser test (migration_assets_tests/test_browser.py): Debian's
# chromium package, driven by the Python playwright package through executable_path (its own
# browser download is blocked on these machines). Safe to re-run; scripts/test.sh calls it.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$MIGRATION_ROOT"

if [ ! -x /usr/bin/chromium ]; then
    echo "setup: apt-get install chromium"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
if [ -x .venv/bin/python ] && ! .venv/bin/python -c "import playwright.sync_api" 2>/dev/null; then
    echo "setup: pip install playwright (the dev extra)"
    .venv/bin/pip install -q "playwright>=1.45"
fi
/usr/bin/chromium --headless --no-sandbox --disable-gpu --version >/dev/null 2>&1 \
    || { echo "setup: /usr/bin/chromium does not start" >&2; exit 1; }
echo "browser: $(/usr/bin/chromium --version 2>/dev/null)"
