#!/usr/bin/env bash
# Issue 17, section UR of docs/benchmarks.md: crosskd@u's pseudo-label settings at 1/8 labels (section UT's data,
# 62.8 teacher, 96 epochs). base = the defaults (unlabeled_ratio 1, pseudo_conf 0.5); variants on tuning seeds 4-7:
#   r2  = unlabeled_ratio: 2     (twice the unlabeled images per step)
#   c25 = pseudo_conf: 0.25      (more, less certain pseudo-boxes)
#   c70 = pseudo_conf: 0.7       (fewer, surer pseudo-boxes)
# The rule, fixed before any run: the best mean paired mAP50-95 gain over base on seeds 4-7 wins (base wins ties and
# when no variant is above it; benchmarks/pick_variant.py). A winner then runs on the benchmark's seeds 0-3, which
# pair with section UT's rows (docs/bench/labeled-0.125-t63).
# Usage (from any folder): bash benchmarks/cpu_unlabeled_round.sh DATA_YAML TEACHER_PT OUT_DIR
# Set KD to a command that runs the CLI (default: yolo-kd); JOBS to runs at once (default 2; each run uses 1 core).
set -u
data=$1
teacher=$2
out=$3
kd=${KD:-yolo-kd}
root=$(cd "$(dirname "$0")/.." && pwd)
declare -A V=([r2]="{unlabeled_ratio: 2}" [c25]="{pseudo_conf: 0.25}" [c70]="{pseudo_conf: 0.7}")
mkdir -p "$out"
b="preset=cpu-small data=$data teacher=$teacher labeled=0.125 epochs=96 methods=crosskd@u jobs=${JOBS:-2}"
$kd benchmark kd $b seeds=4,5,6,7 project="$out/tune-base"
tags=("base=tune-base")
for v in r2 c25 c70; do  # a fixed order: the first listed wins ties
  $kd benchmark kd $b seeds=4,5,6,7 "kd=${V[$v]}" project="$out/tune-$v"
  tags+=("$v=tune-$v")
done
pick=$(python3 "$root/benchmarks/pick_variant.py" "$out" tune-base crosskd@u crosskd@u "${tags[@]}")
echo "pick: $pick" | tee "$out/pick.txt"
if [ "$pick" != base ] && [ -n "${V[$pick]:-}" ]; then
  $kd benchmark kd $b seeds=0,1,2,3 "kd=${V[$pick]}" project="$out/confirm-$pick"
fi
echo ALLDONE
