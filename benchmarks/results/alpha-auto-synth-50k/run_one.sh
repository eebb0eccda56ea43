#!/bin/bash
# One alpha: auto search on synth-8ku-50k (the synthetic-50k grid's settings, config.yaml; the
# dataset generated into the checkout's dataset/ folder as that grid says) for Recall@$1 with seed
# $2 (default 2020); its record lands beside this script as target$1-seed$2.json. The sweep and ce
# to compare with are the grid's cells:
#   python benchmarks/compare_alpha_auto.py benchmarks/results/alpha-auto-synth-50k \
#       benchmarks/results/synthetic-50k SEED
HERE=$(cd "$(dirname "$0")" && pwd)
exec "$HERE/../../alpha_auto_one.sh" "$HERE" synth-8ku-50k "$1" "${2:-2020}" \
  --data_path="$(cd "$HERE/../../.." && pwd)/dataset"
