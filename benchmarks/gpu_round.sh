#!/usr/bin/env bash
# One GPU round, run on a CUDA machine from the repository root: bash benchmarks/gpu_round.sh STAGE OUT_DIR
#   small: the CUDA tests, the step-cost benchmark at 640 (FP32 and fp16 teacher), and the cpu-small preset's paired seeds on the GPU
#   640:   the gpu preset at imgsz 640 on synthetic KITTI (teacher trained here), four paired seeds at once
#   640x, 640y, gkd: the second round's stages (benchmarks/gpu_round2.sh says what each runs)
# Ultralytics (+ polars, thop) may come as wheels in .whl/ when the machine has no registry.
set -u
stage=$1
out=$2
mkdir -p "$out"
export PYTHONUNBUFFERED=1 YOLO_OFFLINE=1 OMP_NUM_THREADS=2
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
printf '#!/bin/sh\nexec python3 -c "import sys; from yolo_kd.cli import main; sys.exit(main())" "$@"\n' >/tmp/kd
chmod +x /tmp/kd  # the CLI without installing the package (timeout needs a program, not a function)
kd=/tmp/kd
{ nvidia-smi -L; nproc --all; python3 -c "import torch, ultralytics; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'ultralytics', ultralytics.__version__)"; } >"$out/device.txt" 2>&1
case $stage in 640x | 640y | gkd) . benchmarks/gpu_round2.sh; exit ;; esac
pack() { tar czf "$out/$1.tgz" -C "$2" --exclude='*.pt' --exclude=data --exclude='*.cache' . 2>/dev/null; }
if [ "$stage" = small ]; then
  [ -n "${SKIP_TESTS:-}" ] || timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_teacher_precision.py tests/test_mixed_precision.py -k gpu >"$out/tests_gpu.log" 2>&1
  timeout 100 $kd benchmark cost device=0 imgsz=640 batch=16 methods=builtin,crosskd,bckd,gkd+bmfi out="$out/step_time_gpu.md" >"$out/cost.log" 2>&1
  timeout 100 $kd benchmark cost device=0 imgsz=640 batch=16 methods=builtin,crosskd,bckd,gkd+bmfi teacher_precision=fp16 \
    out="$out/step_time_gpu_fp16.md" >"$out/cost_fp16.log" 2>&1
  timeout "${BENCH_S:-330}" $kd benchmark kd preset=cpu-small device=0 jobs=12 project=/tmp/gpu-small \
    methods=none,ultralytics,builtin,crosskd,bckd,crosskd+bckd,gkd+bmfi,gkd,bmfi,mimic,gkdpaper,aid,cwd >"$out/bench.log" 2>&1
  pack gpu-small /tmp/gpu-small
else
  timeout "${BENCH_S:-520}" $kd benchmark kd preset=gpu images=800 val_images=300 teacher_cfg=yolov8s.yaml teacher_epochs=25 \
    epochs=15 close_mosaic=5 batch=16 seeds=0,1,2,3 jobs=${JOBS:-12} workers=1 methods=${METHODS:-none,ultralytics,crosskd} \
    project=/tmp/${PROJ:-gpu-640} >"$out/bench.log" 2>&1
  pack ${PROJ:-gpu-640} /tmp/${PROJ:-gpu-640}
fi
ls -la "$out"
