#!/usr/bin/env bash
# Python tools the interop tests call: the email package (stdlib), aiosmtpd, dkimpy.
set -euo pipefail
python3 -m pip install --quiet --disable-pip-version-check aiosmtpd dkimpy
