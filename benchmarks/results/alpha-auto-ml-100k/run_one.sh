#!/bin/bash
# one alpha: auto search on ml-100k (the ml-100k grid's settings, seed $2) for Recall@$1
N=$1; SEED=${2:-2020}
D=/tmp/aa_measure/n$N-s$SEED; rm -rf $D; mkdir -p $D; cd $D
source /work/venv/bin/activate
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONPATH=/tmp/aa_measure/code
/usr/bin/time -v python /tmp/aa_measure/code/run_recbole_croloss.py --model=TwoTower --dataset=ml-100k --loss=croloss \
  --config_files=/tmp/aa_measure/grid_config.yaml --target_n=$N --seed=$SEED \
  --checkpoint_dir=$D/saved --record=$D/record.json > $D/stdout.txt 2> $D/stderr.txt
echo "N=$N seed=$SEED rc=$? $(date -u +%FT%TZ)" >> /tmp/aa_measure/done.txt
