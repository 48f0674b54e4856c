#!/usr/bin/env bash
# tasks: the crash-safety test sends SIGTERM to a worker process with `kill` (procps).
# SQLite itself is bundled by sqlx; nothing else to install.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if ! [ -x /usr/bin/kill ] && ! [ -x /bin/kill ]; then
  apt-get update
  apt-get install -y procps
fi
