#!/usr/bin/env bash
# Prepare a fresh Debian machine: OS packages the testbed needs, then a virtualenv with albprobe.
# Usage: scripts/bootstrap.sh [runtime|test]   (test also installs the browser and bench tools)
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${1:-runtime}"

need_apt=()
command -v haproxy >/dev/null 2>&1 || need_apt+=(haproxy)
if [ "$profile" = "test" ]; then
  command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
  # Firefox (driven over its own WebDriver BiDi) and WebKitGTK's MiniBrowser under Xvfb:
  # the real engines the CORS console-message tests run against.
  command -v firefox-esr >/dev/null 2>&1 || need_apt+=(firefox-esr)
  dpkg -s libwebkit2gtk-4.1-0 >/dev/null 2>&1 || need_apt+=(libwebkit2gtk-4.1-0)
  command -v xvfb-run >/dev/null 2>&1 || need_apt+=(xvfb xauth)
  command -v goaccess >/dev/null 2>&1 || need_apt+=(goaccess)
fi
if [ "${#need_apt[@]}" -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "albprobe: missing ${need_apt[*]} and no apt-get here; install them with your package manager and re-run." >&2
    exit 1
  fi
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
      echo "albprobe: missing ${need_apt[*]}; run as root or: sudo apt-get install -y ${need_apt[*]}" >&2
      exit 1
    fi
  else SUDO=""; fi
  echo "albprobe: installing OS packages: ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
stamp=.venv/.albprobe-installed-$profile
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "albprobe: installing Python packages into .venv ($profile)"
  .venv/bin/pip install -q --upgrade pip >/dev/null
  if [ "$profile" = "test" ]; then
    .venv/bin/pip install -q -e ".[dev]"
  else
    .venv/bin/pip install -q -e .
  fi
  touch "$stamp"
fi
