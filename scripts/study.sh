#!/usr/bin/env bash
# Set up, then run the study (default: the quick preset into ./study). Extra arguments go to
# `vaelab study`, e.g.: bash scripts/study.sh --preset paper --out paper-study
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/vaelab study "$@"
