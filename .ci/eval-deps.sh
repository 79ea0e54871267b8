#!/usr/bin/env bash
# Installs what huella-eval's tests need: pyeer (agreement test) and headless Chromium
# (the HTML report screenshot test). With CI set, those tests fail instead of skipping
# when either is missing.
set -euo pipefail

if ! python3 -c "import pyeer.eer_stats" 2>/dev/null; then
    python3 -m pip install --quiet --disable-pip-version-check pyeer
fi

if ! command -v chromium >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

python3 -c "import pyeer.eer_stats" && chromium --version
