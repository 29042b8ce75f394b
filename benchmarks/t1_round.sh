#!/usr/bin/env bash
# T1 (docs/experiments/T1-real-seg-pose-cpu.md): the seg and pose real rows, after R4's round has left the CPU.
set -euo pipefail
Y=${YOLO_KD:-.venv/bin/yolo-kd}
while pgrep -f benchmarks/r4_round.sh > /dev/null; do sleep 30; done
$Y benchmark kd preset=real-seg project=runs/bench/t1-seg jobs=2
$Y benchmark kd preset=real-pose project=runs/bench/t1-pose jobs=2
