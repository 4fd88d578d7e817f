#!/bin/bash
# Runs as root in a container of a run image; the container is then committed as the build
# image. Arguments: the Debian packages to add. /tmp/tools.txt holds the tools' pins.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive UV_PYTHON_DOWNLOADS=never
pin() { grep -E "^$1==" /tmp/tools.txt | head -n1; }
echo "Installing $# build packages (compiler, pkg-config, headers)"
# the archive this server sees may be a snapshot older than its Release file's Valid-Until
apt-get update -qq -o Acquire::Check-Valid-Until=false
if ! apt-get install -y -q --no-install-recommends "$@" > /tmp/apt.log 2>&1; then
  tail -n 30 /tmp/apt.log; exit 1
fi
echo "$(grep -c '^Setting up' /tmp/apt.log) packages set up"
rm -f /tmp/apt.log
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /usr/share/doc/* /usr/share/man/*
echo "Installing $(pin uv), $(pin poetry), $(pin pipenv) into /opt/shipway"
mkdir -p /opt/shipway/bin
python3 -m venv /opt/shipway/uv
/opt/shipway/uv/bin/pip install -q --no-cache-dir --disable-pip-version-check "$(pin uv)"
ln -s /opt/shipway/uv/bin/uv /opt/shipway/bin/uv
uv=/opt/shipway/bin/uv
"$uv" venv -q --python python3 /opt/shipway/poetry
"$uv" pip install -q --no-cache --python /opt/shipway/poetry "$(pin poetry)" "$(pin poetry-plugin-export)"
ln -s /opt/shipway/poetry/bin/poetry /opt/shipway/bin/poetry
"$uv" venv -q --python python3 /opt/shipway/pipenv
"$uv" pip install -q --no-cache --python /opt/shipway/pipenv "$(pin pipenv)"
ln -s /opt/shipway/pipenv/bin/pipenv /opt/shipway/bin/pipenv
rm -f /tmp/tools.txt /tmp/build-setup.sh
"$uv" --version; /opt/shipway/bin/poetry --version; /opt/shipway/bin/pipenv --version
gcc --version | head -n1; pg_config --version
