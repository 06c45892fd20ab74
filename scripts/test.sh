#!/usr/bin/env bash
# Set up, lint, then run the whole test suite (it fetches MNIST once into the cache).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check src tests benchmarks scripts
exec .venv/bin/python -m pytest -q --numprocesses auto --dist loadfile "$@"
