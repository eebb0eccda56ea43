#!/bin/bash
# One alpha: auto search on ml-100k (the ml-100k grid's settings, config.yaml) for Recall@$1 with
# seed $2, with the code of this checkout and the python on PATH; its record lands beside this script as
# target$1-seed$2.json (+ .hits.npz). Scratch folder: $ALPHA_AUTO_SCRATCH (default /tmp/alpha-auto).
set -u
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=$(cd "$HERE/../../.." && pwd)
N=$1; SEED=${2:-2020}
D=${ALPHA_AUTO_SCRATCH:-/tmp/alpha-auto}/n$N-s$SEED; rm -rf "$D"; mkdir -p "$D"; cd "$D"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONPATH=$ROOT
/usr/bin/time -v python "$ROOT/run_recbole_croloss.py" --model=TwoTower --dataset=ml-100k --loss=croloss \
  --config_files="$HERE/config.yaml" --target_n="$N" --seed="$SEED" \
  --checkpoint_dir="$D/saved" --record="$D/record.json" > "$D/stdout.txt" 2> "$D/stderr.txt"
rc=$?
if [ $rc -eq 0 ]; then
  cp "$D/record.json" "$HERE/target$N-seed$SEED.json"
  [ -f "$D/record.hits.npz" ] && cp "$D/record.hits.npz" "$HERE/target$N-seed$SEED.hits.npz"
fi
echo "N=$N seed=$SEED rc=$rc $(date -u +%FT%TZ)"
exit $rc
