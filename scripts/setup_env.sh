#!/usr/bin/env bash
# Creates (or reuses) ./.venv and installs StyleForge into it with the test and demo extras.
# CPU machines get the pinned CPU wheel of torch. GPU users: create the venv, install the torch
# build for your CUDA first (https://pytorch.org/get-started), then run this with
# STYLEFORGE_TORCH=keep so the installed torch is left alone.
# With --with-browser (the test command) it also installs Debian's Chromium for the studio page tests.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
TORCH_SPEC=${STYLEFORGE_TORCH:-torch==2.13.0}

# The studio's page tests drive a headless Chromium: install Debian's when it is missing and we may
# (root with apt-get). STYLEFORGE_BROWSER=skip leaves it out; those tests then skip, saying why.
have_browser() { command -v chromium >/dev/null && command -v chromedriver >/dev/null; }
if [ "${1:-}" = --with-browser ] && [ "${STYLEFORGE_BROWSER:-}" != skip ] && ! have_browser \
        && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "[setup] installing chromium and chromium-driver (apt-get) for the studio page tests"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver \
            >/dev/null; }; then
        echo "[setup] error: apt-get could not install chromium; set STYLEFORGE_BROWSER=skip to go on without it" >&2
        exit 1
    fi
fi

if [ ! -x .venv/bin/python ]; then
    echo "[setup] creating .venv with $($PYTHON --version)"
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.styleforge-installed
want="$(sha256sum pyproject.toml | cut -d' ' -f1) $TORCH_SPEC"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi
.venv/bin/python -m pip install -q --upgrade pip
if [ "$TORCH_SPEC" != keep ]; then
    echo "[setup] installing $TORCH_SPEC"
    .venv/bin/python -m pip install -q "$TORCH_SPEC"
fi
echo "[setup] installing styleforge (editable) with extras dev, digits"
.venv/bin/python -m pip install -q -e ".[dev,digits]"
echo "$want" > "$stamp"
