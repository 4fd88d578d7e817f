#!/bin/bash
# Runs inside the fresh debootstrap rootfs (chroot, as root) before it becomes a run image.
# Arguments: the Python minor versions the stack serves (python3.X must work for each).
set -euo pipefail
groupadd --gid 1000 app
useradd --uid 1000 --gid 1000 --home-dir /app --no-create-home --shell /bin/bash app
mkdir -p /app /tmp/cache /tmp/env
chown 1000:1000 /app
chmod 1777 /tmp
# Images don't need the downloaded packages nor apt's lists; they only make the stack bigger.
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /usr/share/doc/* /usr/share/man/*
for minor in "$@"; do
  "python$minor" -c 'import ssl, sqlite3, venv, ensurepip, json, http.server, platform
print("python", platform.python_version(), "ok")'
done
