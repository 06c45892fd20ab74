#!/usr/bin/env bash
# Set up, then run the study (default: the article preset into ./study). Extra arguments go to
# `vaelab study`, e.g.: bash scripts/study.sh --preset converged --out converged
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/vaelab study "$@"
