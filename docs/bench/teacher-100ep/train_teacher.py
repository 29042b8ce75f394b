# the stronger teacher for issue 17's ceiling rows: yolov8s, every train label, 100 epochs, cpu-small's other settings
from ultralytics import YOLO
YOLO("yolov8s.yaml").train(data="/work/bench/cpu-small/data/yolo/data.yaml", project="/work/bench/t100", name="teacher",
    epochs=100, imgsz=160, batch=16, nbs=16, workers=0, device="cpu", deterministic=True, plots=False,
    close_mosaic=2, val=False, seed=0, exist_ok=True)
