#!/bin/bash
# One alpha: auto search on ml-100k (the ml-100k grid's settings, config.yaml) for Recall@$1 with
# seed $2 (default 2020); its record lands beside this script as target$1-seed$2.json.
HERE=$(cd "$(dirname "$0")" && pwd)
exec "$HERE/../../alpha_auto_one.sh" "$HERE" ml-100k "$1" "${2:-2020}"
