#!/usr/bin/env bash
# Sets up .venv if needed, then runs the demo: builds the digits data set, trains a small
# conditional StyleGAN2 on the CPU, writes sample grids, a loss plot and a report.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
.venv/bin/styleforge demo "$@"
