"""The footings of ``yolo-kd benchmark kd``: data, teacher, student and schedule per preset, with what each costs."""

from __future__ import annotations

from typing import Any

REAL: dict[str, Any] = {  # preset=real (below); real-seg and real-pose change only what they name
    "images": 0,
    "val_images": 0,
    "teacher_cfg": "yolo11n.pt",
    "teacher_epochs": 6,
    "student": "yolov8n.pt",
    "train_images": 400,
    "epochs": 5,
    "imgsz": 320,
    "batch": 16,
    "seeds": [0, 1, 2, 3],
    "close_mosaic": 1,
    "val": False,
    "device": "cpu",
    "workers": 0,
    "jobs": 1,
    "warmup_epochs": 1,
    "methods": ["none", "ultralytics", "builtin", "default", "gkd+bmfi"],  # default: method= left out (the pick)
}

CPU_SMALL: dict[str, Any] = {
    "images": 540,
    "val_images": 300,  # 60 val images swung mAP50-95 by several points; validation is cheap
    "teacher_cfg": "yolov8s.yaml",
    "teacher_epochs": 15,
    "student": "yolov8n.yaml",
    "epochs": 12,
    "imgsz": 160,
    "batch": 16,
    "seeds": [0, 1, 2, 3],
    "close_mosaic": 2,
    "val": False,  # validate the final epoch only: every run is scored on its last weights, not a best-of-12 pick
    "device": "cpu",
    "workers": 0,
    "jobs": 1,  # runs at once; each gets its own process (on a GPU machine, several seeds share the card)
    "methods": ["none", "ultralytics", "builtin", "mimic", "gkd", "bmfi", "gkd+bmfi"],
}

PRESETS: dict[str, dict[str, Any]] = {
    # about 3 minutes per run on 2 CPU cores: synthetic KITTI (240 train / 300 val), yolov8s teacher trained here
    "cpu-small": CPU_SMALL,
    # real photos, the recipe users follow (bench/footing.py): the helmet set from ../shared/assets (any data=), the
    # COCO-pretrained yolov8n student, a yolo11n teacher fine-tuned once on all 1,868 train images for 6 epochs (~15
    # min here). Students: a fixed 400 of those images, 5 epochs at 320 (2,000 images a run: ~4 min plain, ~6 min
    # with KD on a 2-core Xeon), 1 warm-up epoch instead of 3 (3 of 5 epochs would be warm-up), scored on the 300 val
    # images; 5 methods x 4 seeds ~ 2 h. train_images=0 trains on every image (~4.7x the time).
    "real": REAL,
    # real car photos with instance masks (carparts-seg, 23 part classes): seg students yolov8n-seg from the COCO
    # yolov8n detector's layers (masks from scratch), a yolo11n-seg teacher made the same way and trained once on all
    # 579 train images for 10 epochs (~15 min here); students on a fixed 200, 15 epochs at 256, where they learn
    # masks (T10; 5 epochs left them at ~1.8 mask mAP, T1): ~5 min a run plain, ~10 with the default maskkd on a
    # 2-core Xeon, scored by mask mAP50-95 on the 401 val images; 4 methods x 4 seeds ~ 80 min with jobs=2
    "real-seg": {
        **REAL,
        "dataset": "datasets/carparts-seg",
        "teacher_task_cfg": "yolo11n-seg.yaml",
        "teacher_epochs": 10,
        "student_cfg": "yolov8n-seg.yaml",
        "train_images": 200,
        "imgsz": 256,
        "epochs": 15,
        "methods": ["none", "ultralytics", "crosskd", "default"],  # default: maskkd (T11)
    },
    # real salmon video frames with 11 keypoints (salmon-pose): pose students yolov8n-pose from the COCO detector's
    # layers, a yolo11n-pose teacher made the same way and trained once for 60 epochs on all 238 train images (~40 min
    # here); students on all 238, 20 epochs at 320, where they learn keypoints (T12; 5 epochs after a 15-epoch teacher
    # left them at 0.2 pose mAP, T1): ~9-10 min a run, scored by pose mAP50-95 on the 106 val images (another
    # recording); 4 methods x 4 seeds ~ 90 min with jobs=2
    "real-pose": {
        **REAL,
        "dataset": "datasets/salmon-pose",
        "teacher_task_cfg": "yolo11n-pose.yaml",
        "teacher_epochs": 60,
        "student_cfg": "yolov8n-pose.yaml",
        "train_images": 0,
        "epochs": 20,
        "methods": ["none", "ultralytics", "crosskd", "default"],  # default: kptkd (T13)
    },
    # synthetic task footings (issue 35), cpu-small's schedule with task students from scratch: road scenes with each
    # object's visible outline (the cpu-small images, masks added), stick figures with 5 keypoints and a flip map,
    # aerial tiles of rotated cars/trucks/planes (yolo_kd/data/synthetic_tasks.py); a yolov8s teacher of the task
    # trained here once; scored by the task's own mAP50-95 (mask, pose, rotated box) on 300 val scenes
    **{
        f"syn-{short}": {
            **CPU_SMALL,
            "synthetic_task": task,
            "teacher_cfg": f"yolov8s-{short}.yaml",
            "student": f"yolov8n-{short}.yaml",
            "methods": ["none", "ultralytics", *extra],
        }
        for short, task, extra in (
            ("seg", "segment", ["crosskd", "crosskd+maskkd"]),
            ("pose", "pose", ["crosskd", "crosskd+kptkd"]),
            ("obb", "obb", ["builtin", "kd", "cwd"]),  # crosskd's terms need the axis-aligned box branch
        )
    },
    # a GPU machine: real data at 640, tens of epochs; pass data= and teacher= (e.g. KITTI and a trained yolov8l)
    "gpu": {
        "images": 0,
        "val_images": 0,
        "teacher_cfg": "yolov8m.yaml",
        "teacher_epochs": 60,
        "student": "yolov8n.yaml",
        "epochs": 40,
        "imgsz": 640,
        "batch": 32,
        "seeds": [0, 1, 2],
        "close_mosaic": 10,
        "val": False,  # final-epoch scoring, as in cpu-small: a best-of-N pick on the scoring set flatters noise
        "device": 0,
        "workers": 4,
        "jobs": 4,
        "methods": ["none", "ultralytics", "builtin", "crosskd", "bckd", "crosskd+bckd", "gkd+bmfi"],
    },
}
