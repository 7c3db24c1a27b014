#!/usr/bin/env bash
# Command (b): from a fresh clone, set everything up, start the services and run every test.
# Extra arguments go to pytest (tiers: -m unit, -m definitions, -m "integration and not process",
# -m process). "No tests collected" (pytest exit code 5) is a failure here.
set -uo pipefail
source "$(dirname "$0")/env.sh"
cd "$MIGRATION_ROOT"

scripts/setup.sh || exit 1
# `scripts/test.sh -m unit`: the tier that needs no server starts none.
unit_only=0
prev=""
for arg in "$@"; do
    if [ "$prev" = "-m" ] && [ "$arg" = "unit" ]; then unit_only=1; fi
    prev="$arg"
done
if [ "$unit_only" = 0 ]; then
    scripts/services.sh start || exit 1
    if [ "${SKIP_BROWSER_SETUP:-0}" != "1" ]; then
        scripts/setup_browser.sh || exit 1
    fi
fi
python -m pytest "$@"
rc=$?
if [ "$rc" = 5 ]; then
    echo "test: pytest collected no tests (exit code 5); treating that as a failure" >&2
    exit 1
fi
exit "$rc"
