"""Benchmarks: KD efficacy (``kd``), training cost (``cost``); run with ``yolo-kd benchmark kd|cost``."""
