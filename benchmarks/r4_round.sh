#!/usr/bin/env bash
# R4 (docs/experiments/R4-balanced-default-fresh-seeds.md): tune on seeds 4-5, report the pick on seeds 6-9.
set -euo pipefail
Y=${YOLO_KD:-.venv/bin/yolo-kd}
R=runs/bench/real-helmet
F=(preset=real data=$R/data/helmet/data.yaml teacher=$R/runs/teacher/weights/best.pt jobs=2)
T=runs/bench/r4-tune
declare -A METHOD=([bal]=crosskd [balalign]=crosskd [gbbal]=gkd+bmfi)
declare -A KD=([bal]="{kd_balance: auto, kd_share: 0.5}"
               [balalign]="{kd_balance: auto, kd_share: 0.5, crosskd_align: true}"
               [gbbal]="{kd_balance: auto, kd_share: 0.5}")
$Y benchmark kd "${F[@]}" project=$T seeds=4,5 methods=none,ultralytics
for tag in bal balalign gbbal; do
  $Y benchmark kd "${F[@]}" project=$T-$tag seeds=4,5 methods=${METHOD[$tag]} kd="${KD[$tag]}"
done
pick=$($Y benchmark pick ref=$T/ultralytics bal=$T-bal/crosskd balalign=$T-balalign/crosskd gbbal=$T-gbbal/gkd+bmfi)
echo "R4 pick: $pick"
$Y benchmark kd "${F[@]}" project=runs/bench/r4-report seeds=6,7,8,9 methods=none,ultralytics
$Y benchmark kd "${F[@]}" project=runs/bench/r4-report-$pick seeds=6,7,8,9 methods=${METHOD[$pick]} kd="${KD[$pick]}"
