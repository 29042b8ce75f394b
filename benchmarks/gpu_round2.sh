# The second GPU round's stages (2026-11-23, docs/benchmarks.md section H):
#   640x: the gpu preset at 640 again (teacher trained here): none, ultralytics, builtin, and crosskd with
#         kd_balance=auto, four paired seeds, 16 runs at once; the CUDA tests run beside the data generation
#   640y: the same teacher (same jobs=), crosskd and bckd with kd_balance=auto, gkd+bmfi with the gkd stage's pick,
#         with and without kd_balance=auto
#   gkd:  issue 15 on cpu-small's settings: three BMFI strengths of gkd+bmfi against its default on tuning seeds 4-7,
#         the variant with the best mean gain over builtin picked by that rule alone, then the benchmark's seeds 0-3
#         for none, builtin, ultralytics, crosskd, fgd, gkd+bmfi and the pick
# Sourced by gpu_round.sh after its set-up (stage, out, kd); run it as: bash benchmarks/gpu_round.sh STAGE OUT_DIR
# The CUDA tests read assets from .assets/ (git-ignored: weights/yolo11n.pt and a few COCO images from ../shared),
# carried to the machine beside .whl/.
start=$(date +%s)
left() { echo $((${BUDGET_S:-560} - $(date +%s) + start)); }
logs=/tmp/round-logs; mkdir -p $logs
# every table, runs.csv, plot and each run's bench.json / results.csv / log, in one archive (8 files come back at most)
pack_runs() { (cd "$2" && find . -maxdepth 1 -type f; cd "$2" && find runs -mindepth 2 -maxdepth 2 -type f \( -name bench.json \
  -o -name results.csv -o -name train.log -o -name args.yaml -o -name spec.json \)) 2>/dev/null >/tmp/pack.lst
  tar czf "$logs/$1.tgz" -C "$2" -T /tmp/pack.lst 2>/dev/null; }
wait_for() { while [ ! -f "$1" ] && [ "$(left)" -gt 30 ]; do sleep 5; done; }
if [ "$stage" = 640x ] || [ "$stage" = 640y ]; then
  P=/tmp/g640x
  common="preset=gpu images=800 val_images=300 teacher_cfg=yolov8s.yaml teacher_epochs=25 epochs=15 close_mosaic=5
    batch=16 seeds=0,1,2,3 workers=1"
  YOLO_KD_ASSETS=$PWD/.assets timeout 200 python3 -m pytest -q -p no:cacheprovider tests/test_teacher_precision.py \
    tests/test_mixed_precision.py -k gpu >"$logs/tests_gpu.log" 2>&1 &
  # jobs=12 here: the teacher trains with workers x jobs loaders, so the same jobs= gives the same teacher
  if [ "$stage" = 640x ]; then base="methods=none,ultralytics,builtin"; else base="methods=none seeds=0"; fi
  timeout "$(left)" $kd benchmark kd $common jobs=12 $base project=$P/base >"$logs/base.log" 2>&1 &
  wait_for $P/base/teacher.json
  dt="data=$P/base/data/yolo/data.yaml teacher=$P/base/runs/teacher/weights/best.pt"
  if [ "$stage" = 640x ]; then
    runs=("auto|crosskd|{kd_balance: auto}")
  else
    runs=("auto2|crosskd,bckd|{kd_balance: auto}" "pickc|gkd+bmfi|{bmfi_alpha: 0.25, bmfi_tau: 1.0}"
      "pickc-auto|gkd+bmfi|{bmfi_alpha: 0.25, bmfi_tau: 1.0, kd_balance: auto}")
  fi
  for r in "${runs[@]}"; do
    IFS='|' read -r name methods kdv <<<"$r"
    timeout "$(left)" $kd benchmark kd $common $dt jobs=8 methods=$methods "kd=$kdv" project=$P/$name \
      >"$logs/$name.log" 2>&1 &
  done
  wait
  for d in $P/*/; do pack_runs "640-$(basename "$d")" "$d"; done
else
  P=/tmp/gkd
  common="preset=cpu-small device=0"
  timeout "$(left)" $kd benchmark kd $common seeds=4,5,6,7 jobs=12 methods=none,builtin,gkd+bmfi project=$P/tune-base \
    >"$logs/tune-base.log" 2>&1 &
  wait_for $P/tune-base/teacher.json
  dt="data=$P/tune-base/data/yolo/data.yaml teacher=$P/tune-base/runs/teacher/weights/best.pt"
  for v in "a|{bmfi_alpha: 0.25}" "b|{bmfi_alpha: 0.5}" "c|{bmfi_alpha: 0.25, bmfi_tau: 1.0}"; do
    timeout "$(left)" $kd benchmark kd $common $dt seeds=4,5,6,7 jobs=4 methods=gkd+bmfi "kd=${v#*|}" \
      project=$P/tune-${v%%|*} >"$logs/tune-${v%%|*}.log" 2>&1 &
  done
  wait
  pick=$(python3 benchmarks/pick_variant.py "$P" tune-base builtin gkd+bmfi default=tune-base a=tune-a b=tune-b \
    c=tune-c 2>"$logs/pick.txt")
  echo "pick: $pick" >>"$logs/pick.txt"
  timeout "$(left)" $kd benchmark kd $common $dt seeds=0,1,2,3 jobs=20 \
    methods=none,builtin,ultralytics,crosskd,fgd,gkd+bmfi project=$P/confirm-base >"$logs/confirm-base.log" 2>&1 &
  case $pick in
    a) kdv="{bmfi_alpha: 0.25}" ;;
    b) kdv="{bmfi_alpha: 0.5}" ;;
    c) kdv="{bmfi_alpha: 0.25, bmfi_tau: 1.0}" ;;
    *) kdv="" ;;
  esac
  [ -n "$kdv" ] && timeout "$(left)" $kd benchmark kd $common $dt seeds=0,1,2,3 jobs=4 methods=gkd+bmfi "kd=$kdv" \
    project=$P/confirm-pick >"$logs/confirm-pick.log" 2>&1 &
  wait
  for d in $P/*/; do pack_runs "$(basename "$d")" "$d"; done
fi
tar czf "$out/round.tgz" -C $logs . && ls -la "$out" $logs
