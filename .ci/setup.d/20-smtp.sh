#!/usr/bin/env bash
# SMTP servers for the transport tests and bench: aiosmtpd (PyPI) for the real-server
# tests, Postfix's smtp-sink (Debian `postfix`) for benches/smtp.rs.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if ! python3 -c 'import aiosmtpd' 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check aiosmtpd \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages aiosmtpd
fi
if ! command -v smtp-sink >/dev/null 2>&1 && [ ! -x /usr/sbin/smtp-sink ]; then
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends postfix >/dev/null
fi
python3 -c 'import aiosmtpd' && test -x /usr/sbin/smtp-sink && echo "smtp setup ok"
