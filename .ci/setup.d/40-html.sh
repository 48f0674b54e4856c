#!/usr/bin/env bash
# What the html/csp/dkim/web tests need: headless Chromium (Debian's `chromium`) for the browser
# check of processed HTML bodies, `chromium-driver` (chromedriver, WebDriver) for the
# `mailroom serve` UI tests, dkimpy (+ PyNaCl for Ed25519) to verify DKIM signatures.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core >/dev/null
fi
python3 -m pip install --quiet --disable-pip-version-check dkimpy pynacl
