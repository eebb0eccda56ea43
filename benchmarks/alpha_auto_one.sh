#!/bin/bash
# One alpha: auto search, TwoTower with FOLDER/config.yaml on DATASET for Recall@N with SEED, run
# with the code of this checkout and the python on PATH; its record lands in FOLDER as
# targetN-seedSEED.json (+ .hits.npz). Further arguments go to the CLI as they are.
#   benchmarks/alpha_auto_one.sh FOLDER DATASET N SEED [CLI arguments]
# Scratch folder: $ALPHA_AUTO_SCRATCH (default /tmp/alpha-auto); RecBole's log/ lands there too.
set -u
[ $# -ge 4 ] || { sed -n 2,6p "$0"; exit 2; }
ROOT=$(cd "$(dirname "$0")/.." && pwd); FOLDER=$(cd "$1" && pwd); DATASET=$2; N=$3; SEED=$4; shift 4
D=${ALPHA_AUTO_SCRATCH:-/tmp/alpha-auto}/$DATASET-n$N-s$SEED; rm -rf "$D"; mkdir -p "$D"; cd "$D"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONPATH=$ROOT
/usr/bin/time -v python "$ROOT/run_recbole_croloss.py" --model=TwoTower --dataset="$DATASET" --loss=croloss \
  --config_files="$FOLDER/config.yaml" --target_n="$N" --seed="$SEED" \
  --checkpoint_dir="$D/saved" --record="$D/record.json" "$@" > "$D/stdout.txt" 2> "$D/stderr.txt"
rc=$?
if [ $rc -eq 0 ]; then
  cp "$D/record.json" "$FOLDER/target$N-seed$SEED.json"
  [ -f "$D/record.hits.npz" ] && cp "$D/record.hits.npz" "$FOLDER/target$N-seed$SEED.hits.npz"
fi
echo "$DATASET N=$N seed=$SEED rc=$rc $(date -u +%FT%TZ)"
exit $rc
