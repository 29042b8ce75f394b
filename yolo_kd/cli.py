"""``yolo-kd`` command line in Ultralytics' key=value style (train, benchmark, export, predict, ...)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any

from yolo_kd.errors import KDError, check_keys, with_article

HELP = """yolo-kd: knowledge distillation for Ultralytics YOLO students (detect, segment, pose, obb)

Usage: yolo-kd COMMAND [key=value ...]
  train    teacher=T.pt student=yolov8n.yaml data=D.yaml [method=(picked per student)] [any Ultralytics arg]
           the task comes from the student (yolov8n-seg.yaml, -pose, -obb); seg/pose terms: maskkd, kptkd;
           `yolo-kd methods` marks the method each student gets when method= is left out
           KD args: method=a+b, kd_args={...} or <method>_<param>=v (e.g. gkd_weight=2),
           kd_decay=constant|linear|cosine, kd_final=0.1, kd_close_mosaic=False, plugins=my_module,
           kd_balance=off|auto, kd_teacher_precision=fp32|auto|fp16|bf16,
           unlabeled=DIR|list.txt|'glob' unlabeled_ratio=2 pseudo_conf=0.5 pseudo_iou=0.7 pseudo_max=100
           pseudo_weight=1: teacher pseudo-labels + distillation on images without labels
  train-teacher model=yolov8l.pt data=D.yaml [epochs=100 imgsz=640 ...]: fine-tune the teacher (plain Ultralytics)
  fix-bn   model=IN.pt data=D.yaml [out=IN-bn.pt images=64 imgsz=640]: re-estimate BatchNorm statistics of
           weights rebuilt from fused/INT8 exports (identity BatchNorm collapses when fine-tuned)
  methods  list the distillation methods and their hyper-parameters [format=md: the README's table]
  inspect  teacher=T.pt data=D.yaml [student=S method=(train's pick) batches=8 imgsz=(the .pt's) batch=8 out=DIR]:
           per KD term its gradient share vs the detection loss, where its maps put their mass, teacher vs student
           mAP, PNG
  convert  kitti src=KITTI_ROOT dst=OUT [classes=all] [map={Van: Car}] [val_fraction=0.2] [dontcare=drop|mask]
  convert  coco-traffic src=COCO_ROOT dst=OUT [classes=person,car,...] [keep_empty=False] [link=False]
  benchmark kd [preset=cpu-small|gpu] [data=D.yaml teacher=T.pt methods=none,builtin,crosskd seeds=0,1 jobs=1 ...]
           every method trained with identical settings, stock-validated; table.md, runs.csv, plots
  benchmark cost [teacher=yolov8s.yaml student=yolov8n.yaml imgsz=320 batch=8 methods=... out=FILE.md
                  teacher_precision=fp32|auto|bf16|fp16 data=D.yaml (seg/pose/obb students: a batch of D)]
           step time and peak memory per method vs. the student alone and the lower bound
  benchmark edge model=best.pt data=D.yaml [imgsz=320,640 formats=pytorch,onnx,openvino-fp32,... images=DIR
                  out=FILE.md max_drop=0.5 (for formats=...,openvino-int8ac)]
           latency, throughput, size, mAP per runtime/precision; torch-free end-to-end vs Ultralytics predict
  benchmark diff folders=F1,F2:SUFFIX pairs="A:B A:LOW:HIGH" [level=0.95 seeds= plot=F.png]: paired gains, intervals
  benchmark merge out=DIR folders=...   benchmark pick ref=F/METHOD TAG=F/METHOD ...: the tuning rule's pick
  benchmark round spec=benchmarks/rounds/R.yaml [logs=DIR]: stages from a YAML spec, each under its timeout,
           tables packed after each (resumes: finished runs are kept)
  export   model=best.pt format=openvino|onnx [imgsz=640] [half=True] [int8=True data=D.yaml fraction=1.0
           max_drop=0.5]
           Ultralytics' exporter + parity report (raw outputs and mAP vs PyTorch); KD last.pt accepted
  predict  model=X_openvino_model|X.onnx source=IMG|DIR|VIDEO [conf=0.25 iou=0.7 imgsz= classes=0,car max_det=300
           save=True project=runs/predict device=CPU out=preds.json]
           torch-free runtime (yolo_kd.edge): OpenVINO for an IR (pip install "yolo-kd[edge]"), ONNX Runtime for an
           .onnx (pip install "yolo-kd[edge-onnx]"; device= names its provider: CPU, CUDA, TensorRT, ...)
  demo     [fast=True] [dir=runs/demo]: synthetic KITTI -> teacher -> student with and without KD -> table
  help     this text
"""


def parse_kv(items: list[str]) -> dict[str, Any]:
    """Parse ``key=value`` tokens, values read as YAML (numbers, bools, lists, dicts); error on bare words."""
    import yaml

    out: dict[str, Any] = {}
    for tok in items:
        if "=" not in tok:
            raise KDError(f"argument '{tok}' is not key=value (e.g. epochs=10); see `yolo-kd help`")
        k, v = tok.split("=", 1)
        try:
            val = yaml.safe_load(v) if v != "" else None
        except yaml.YAMLError:
            val = v
        # a dict only when written as one ({...}): "title=R1: helmet" is text, not the mapping {R1: helmet}
        out[k.strip()] = v if isinstance(val, dict) and not v.lstrip().startswith("{") else val
    return out


def call(fn, kv: dict[str, Any], cmd: str):
    """Call ``fn(**kv)`` after checking the keys against its signature: one line with a did-you-mean otherwise."""
    import inspect

    params = inspect.signature(fn).parameters
    allowed = getattr(fn, "keys", None)  # a **kv command names its keys in a ``keys`` attribute
    if allowed is not None or not any(p.kind == p.VAR_KEYWORD for p in params.values()):
        check_keys(kv, allowed or params, cmd)
    return fn(**kv)


def command_help(cmd: str) -> str:
    """The lines of HELP that describe ``cmd`` (a command's own ``--help``)."""
    lines, keep = [], False
    for ln in HELP.splitlines()[3:]:
        if ln.startswith("  ") and not ln.startswith("   "):
            keep = ln.split()[0] == cmd
        if keep:
            lines.append(ln)
    return "\n".join(lines) or HELP


def cmd_train(kv: dict[str, Any]) -> None:
    """Run a distillation training."""
    from yolo_kd.tasks import trainer_for

    trainer = trainer_for(kv)
    try:
        trainer.train()
    except KeyboardInterrupt:
        from pathlib import Path

        last = Path(trainer.last)
        hint = f"resume with: yolo-kd train resume=True model={last}" if last.exists() else "no checkpoint saved yet"
        print(f"\nyolo-kd: interrupted; {hint}", file=sys.stderr)
        raise SystemExit(130) from None


def cmd_methods(kv: dict[str, Any]) -> None:
    """Print registered methods with paper line and hyper-parameters (``format=md``: the README's table)."""
    from yolo_kd.losses import describe, method_params
    from yolo_kd.plugins import import_plugins

    check_keys(kv, ("plugins", "format"), "methods")
    if kv.get("format", "text") not in {"text", "md"}:
        raise KDError(f"format={kv['format']} is not one of text, md")
    import_plugins(kv.get("plugins"))
    if kv.get("format") == "md":
        from yolo_kd.losses.registry import methods_markdown

        print(methods_markdown())
        return
    from yolo_kd.cfg import KD_DEFAULTS, PRETRAINED_ARGS, PRETRAINED_METHODS, TASK_METHODS  # named there (torch-free)

    for key, doc in describe():
        pre = PRETRAINED_ARGS.get(key, {})
        params = ", ".join(f"{key}_{p}={v}" + (f" ({pre[p]} for a .pt student)" if p in pre else "")
                           for p, v in method_params(key).items())  # fmt: skip
        tasks = [t for t, m in TASK_METHODS.items() if m == key]
        mark = "  (the default method)" if key == KD_DEFAULTS["method"] else ""
        mark += f"  (the default for {', '.join(tasks)} students)" if tasks else ""
        for task, (m, opts) in PRETRAINED_METHODS.items():
            given = ", at " + " ".join(f"{key}_{p}={v}" for p, v in opts.items()) if opts else ""
            taught = f" and {with_article(task)} teacher" if task != "detect" else ""
            mark += f"  (the default for {with_article(task)} student from a .pt{taught}{given})" if m == key else ""
        print(f"{key:9s} {doc}{mark}\n{'':9s} {params}")


def cmd_convert(args: list[str]) -> None:
    """Dataset converters: ``convert kitti|coco-traffic src=... dst=...``."""
    if not args or args[0] not in {"kitti", "coco-traffic"}:
        raise KDError("usage: yolo-kd convert kitti|coco-traffic src=ROOT dst=OUT_DIR [options]; see `yolo-kd help`")
    kv = parse_kv(args[1:])
    keys = ("src", "dst", "classes", "keep_empty", "link") if args[0] == "coco-traffic" else (
        "src", "dst", "map", "classes", "val_fraction", "seed", "dontcare")  # fmt: skip
    check_keys(kv, keys, f"convert {args[0]}")
    if "src" not in kv or "dst" not in kv:
        raise KDError(f"convert {args[0]} needs src=ROOT and dst=OUT_DIR")
    if args[0] == "coco-traffic":
        from yolo_kd.data.coco_traffic import convert_coco_traffic

        extra = {k: kv[k] for k in ("classes", "keep_empty", "link") if k in kv}
        if isinstance(extra.get("classes"), str):
            extra["classes"] = [c.strip() for c in extra["classes"].split(",")]
        print(convert_coco_traffic(kv["src"], kv["dst"], **extra))
        return
    from yolo_kd.data.kitti import convert_kitti

    extra = {k: kv[k] for k in ("classes", "val_fraction", "seed", "dontcare") if k in kv}
    print(convert_kitti(kv["src"], kv["dst"], mapping=kv.get("map"), **extra))


def cmd_benchmark(args: list[str]) -> None:
    """``benchmark kd|cost key=value ...`` (``--key value`` is accepted too)."""
    if not args or args[0] not in {"kd", "cost", "edge", "diff", "merge", "pick", "round"}:
        raise KDError("usage: yolo-kd benchmark kd|cost|edge|diff|merge|pick|round [key=value ...]; see `yolo-kd help`")
    toks, rest = [], list(args[1:])
    while rest:
        tok = rest.pop(0)
        if tok.startswith("--"):
            tok = tok[2:] if "=" in tok or not rest else f"{tok[2:]}={rest.pop(0)}"
        toks.append(tok)
    kv = parse_kv(toks)
    if args[0] in {"diff", "merge", "pick"}:
        from yolo_kd.bench.commands import command

        return command(args[0], kv)
    if args[0] == "kd":
        from yolo_kd.bench.kd import run_kd_benchmark

        run_kd_benchmark(**kv)
    elif args[0] == "cost":
        from yolo_kd.bench.cost import run_cost_benchmark

        run_cost_benchmark(**kv)
    elif args[0] == "round":
        from yolo_kd.bench.rounds import run_round

        call(run_round, kv, "benchmark round")
    else:
        if "model" not in kv or "data" not in kv:
            raise KDError("benchmark edge needs model=student.pt and data=D.yaml (calibration and val images)")
        from yolo_kd.bench.edge import run_edge_benchmark

        run_edge_benchmark(**kv)


def cmd_tool(cmd: str, module: str, fn: str, keys: tuple[str, ...] = (), what: str = ""):
    """A command that checks its required keys, then calls ``yolo_kd.<module>.<fn>`` with the checked key=values."""

    def run(args: list[str]) -> None:
        kv = parse_kv(args)
        if not all(k in kv for k in keys):
            raise KDError(f"{cmd} needs {what}")
        call(getattr(importlib.import_module(f"yolo_kd.{module}"), fn), kv, cmd)

    return run


COMMANDS: dict[str, Callable[[list[str]], None]] = {
    "train": lambda a: cmd_train(parse_kv(a)),
    "train-teacher": cmd_tool("train-teacher", "tools.teacher_train", "train_teacher"),
    "fix-bn": cmd_tool("fix-bn", "tools.bn", "fix_bn"),
    "methods": lambda a: cmd_methods(parse_kv(a)),
    "inspect": cmd_tool(
        "inspect",
        "tools.inspect",
        "run_inspect",
        ("teacher", "data"),
        "teacher=T.pt and data=D.yaml (student= and method= are optional)",
    ),  # fmt: skip
    "convert": cmd_convert,
    "benchmark": cmd_benchmark,
    "export": cmd_tool("export", "tools.export", "export", ("model",), "model=path/to/best.pt"),
    "predict": cmd_tool(
        "predict",
        "tools.predict",
        "predict",
        ("model", "source"),
        "model=X_openvino_model (or X.onnx) and source=image|directory|video",
    ),  # fmt: skip
    "demo": cmd_tool("demo", "tools.demo", "run_demo"),
}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``yolo-kd`` console script; returns the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in {"help", "-h", "--help"}:
        print(HELP)
        return 0
    cmd, rest = argv[0], argv[1:]
    if any(a in {"--help", "-h", "help"} for a in rest):
        print(f"yolo-kd {cmd}:\n{command_help(cmd)}")
        return 0
    try:
        if cmd not in COMMANDS:
            raise KDError(f"unknown command '{cmd}'; use one of {', '.join(COMMANDS)}, help")
        COMMANDS[cmd](rest)
    except ModuleNotFoundError as e:
        if cmd == "predict" and e.name and e.name.split(".")[0] == "onnxruntime":
            print("yolo-kd: error: predict on an .onnx needs onnxruntime; pip install 'yolo-kd[edge-onnx]'",
                  file=sys.stderr)  # fmt: skip
            return 2
        if e.name and e.name.split(".")[0] in {"torch", "torchvision", "ultralytics", "onnx", "onnxruntime", "nncf"}:
            print(f"yolo-kd: error: '{cmd}' needs {e.name}; install the training extras: pip install 'yolo-kd[train]'",
                  file=sys.stderr)  # fmt: skip
            return 2
        if e.name and e.name.split(".")[0] in {"openvino", "cv2"}:
            print(f"yolo-kd: error: '{cmd}' needs {e.name}; pip install 'yolo-kd[edge]'", file=sys.stderr)
            return 2
        raise
    except (KDError, SyntaxError, FileNotFoundError) as e:
        msg = " ".join(str(e).split())
        print(f"yolo-kd: error: {msg}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
