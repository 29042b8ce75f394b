#!/usr/bin/env bash
# Issue 15, sections D and D2 of docs/benchmarks.md: a tuning round of gkd+bmfi on the CPU footing of section 0 (same data,
# teacher, preset). Variants run on tuning seeds 4-7 against base = every current default (the gw12 rows of section
# C's tuning round, docs/bench/cpu-gkd-tune). The rule, fixed before any run: the best mean
# paired gain over builtin on seeds 4-7 wins (benchmarks/pick_variant.py); if a variant wins, it runs on the
# benchmark's seeds 0-3 (they pair with section 0) for gkd+bmfi and the round's other method. Since section D2 the
# defaults' rows are D2's gkd+bmfi@e1 (round score).
#   ROUND=bmfi  BMFI side (inspect: fg 0.16x, att 0.05x the detection gradient late in training), confirm + bmfi
#               a4 = bmfi_alpha: 1.0 (fg 4x), c10 = bmfi_gamma: 0.06 (attention 10x)
#   ROUND=gkd2  GKD side again (gated weight 6 -> 12 moved gkd+bmfi from -1.7 to -0.4 below builtin), confirm + gkd
#               w24 = gkd_weight: 24, w48 = gkd_weight: 48
#   ROUND=ring  BMFI without its Gaussian ring (inspect: 41-52 % of its fg weight lies off the box cells), confirm + bmfi
#               e1 = bmfi_expand: 1.0, bmfi_alpha: 0.0625 (the box cells keep their weight: the area normaliser
#               shrinks 4x with the ring, so alpha does too)
#   ROUND=score GKD's map as a Grad-CAM of a score target (issue 15 item 1; section D3), confirm + gkd
#               sc = gkd_map: score
# Usage (from any folder): bash benchmarks/cpu_tune_round.sh bmfi|gkd2|ring|score DATA_YAML TEACHER_PT OUT_DIR
# Set KD to a command that runs the CLI (default: yolo-kd); JOBS to runs at once (default 1; each run uses 1 core).
set -u
round=$1
data=$2
teacher=$3
out=$4
kd=${KD:-yolo-kd}
root=$(cd "$(dirname "$0")/.." && pwd)
case $round in
  bmfi) declare -A V=([a4]="{bmfi_alpha: 1.0}" [c10]="{bmfi_gamma: 0.06}"); other=bmfi ;;
  gkd2) declare -A V=([w24]="{gkd_weight: 24}" [w48]="{gkd_weight: 48}"); other=gkd ;;
  ring) declare -A V=([e1]="{bmfi_expand: 1.0, bmfi_alpha: 0.0625}"); other=bmfi ;;
  score) declare -A V=([sc]="{gkd_map: score}"); other=gkd; base=docs/bench/cpu-bmfi-ring-tune:gkd+bmfi@e1 ;;
  *) echo "unknown round '$round'; use bmfi, gkd2, ring or score" >&2; exit 2 ;;
esac
mkdir -p "$out"
b="preset=cpu-small data=$data teacher=$teacher jobs=${JOBS:-1}"
ref=$root/docs/bench/cpu-gkd-tune
tags=("base=$root/${base:-docs/bench/cpu-gkd-tune:gkd+bmfi@gw12}")  # every default of the round's time
for v in $(printf "%s\n" "${!V[@]}" | sort); do  # a fixed order: the first listed wins ties
  $kd benchmark kd $b seeds=4,5,6,7 methods=gkd+bmfi "kd=${V[$v]}" project="$out/tune-$v"
  tags+=("$v=tune-$v")
done
pick=$(python3 "$root/benchmarks/pick_variant.py" "$out" "$ref" builtin gkd+bmfi "${tags[@]}")
echo "pick: $pick" | tee "$out/pick.txt"
if [ "$pick" != base ] && [ -n "${V[$pick]:-}" ]; then
  $kd benchmark kd $b seeds=0,1,2,3 methods=gkd+bmfi,$other "kd=${V[$pick]}" project="$out/confirm-$pick"
fi
echo ALLDONE
