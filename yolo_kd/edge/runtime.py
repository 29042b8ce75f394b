"""Torch-free detector on OpenVINO or ONNX Runtime: image in, boxes out (numpy, pyyaml, a runtime; OpenCV optional)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from yolo_kd.edge.backend import Backend
from yolo_kd.edge.ops import decode, letterbox, scale_boxes, to_input
from yolo_kd.edge.results import Detections
from yolo_kd.edge.task_ops import (
    corners,
    decode_rotated,
    masks_on_image,
    scale_keypoints,
    scale_rotated,
)
from yolo_kd.errors import KDError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def read_image(path: str | Path) -> np.ndarray:
    """Read a BGR uint8 image (OpenCV if installed, else Pillow, EXIF orientation applied) or raise a one-line error."""
    try:
        import cv2
    except ImportError:
        from PIL import Image, ImageOps, UnidentifiedImageError

        try:
            with Image.open(path) as im:
                return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))[..., ::-1].copy()
        except (OSError, UnidentifiedImageError) as e:
            raise KDError(f"cannot read image '{path}' ({type(e).__name__})") from e
    img = cv2.imread(str(path))
    if img is None:
        raise KDError(f"cannot read image '{path}' (missing, or not an image cv2 can decode)")
    return img


def list_images(source: str | Path) -> list[Path]:
    """An image file, or the images in a directory (sorted); error when there are none."""
    p = Path(source)
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise KDError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in directory '{p}'")
        return files
    if not p.exists():
        raise KDError(f"source '{p}' does not exist; pass an image, a directory of images or a video")
    return [p]


def open_backend(model: str | Path, device: str = "CPU", hint: str = "LATENCY", precision: str = "") -> Backend:
    """The backend for ``model``: OpenVINO for an IR folder or ``.xml``, ONNX Runtime for a ``.onnx`` file.

    Args:
        model (str | Path): ``*_openvino_model`` folder, its ``.xml``, or an ``.onnx`` file.
        device (str): OpenVINO device (CPU, GPU, NPU, AUTO) or ONNX Runtime execution provider (CPU, CUDA,
            TensorRT, ... or its full name such as ``CUDAExecutionProvider``; several comma-separated, in order).
        hint (str): OpenVINO PERFORMANCE_HINT (LATENCY or THROUGHPUT); ONNX Runtime has none.
        precision (str): OpenVINO INFERENCE_PRECISION_HINT (e.g. ``f32``); ONNX Runtime runs the file's precision.
    """
    p = Path(model)
    if p.suffix.lower() == ".onnx":
        if not p.is_file():
            raise KDError(f"ONNX model '{p}' does not exist; export one with `yolo-kd export format=onnx`")
        if precision:
            raise KDError(f"precision={precision} is an OpenVINO setting; an ONNX file runs at its own precision")
        from yolo_kd.edge.backend_onnx import OnnxRuntimeBackend

        return OnnxRuntimeBackend(p, device)
    if p.is_dir() or p.suffix.lower() == ".xml":
        from yolo_kd.edge.backend_openvino import OpenVINOBackend

        return OpenVINOBackend(p, device, hint, precision)
    raise KDError(
        f"model '{p}' is neither an OpenVINO IR (*_openvino_model folder or .xml) nor an .onnx file; "
        "export one with `yolo-kd export format=openvino` or `format=onnx`"
    )


class Detector:
    """A YOLO detector exported by Ultralytics (``yolo-kd export`` or ``YOLO.export``) to OpenVINO IR or ONNX.

    The backend follows the model path (``open_backend``): an ``*_openvino_model`` folder or
    ``.xml`` runs on OpenVINO, a ``.onnx`` file on ONNX Runtime; letterboxing, decoding, NMS and results are shared.

    Args:
        model (str | Path): An ``*_openvino_model`` folder (with ``metadata.yaml``), its ``.xml``, or an ``.onnx``.
        device (str): OpenVINO device (CPU, GPU, NPU, AUTO) or ONNX Runtime provider(s) (CPU, CUDA, TensorRT, ...).
        conf (float): Confidence threshold (Ultralytics' predict default 0.25).
        iou (float): NMS IoU threshold (Ultralytics' default 0.7).
        max_det (int): Maximum detections per image.
        hint (str): OpenVINO PERFORMANCE_HINT: LATENCY (one image at a time) or THROUGHPUT (``predict_many``).
        precision (str): OpenVINO INFERENCE_PRECISION_HINT, e.g. ``f32``; empty keeps the device default (bf16 on CPUs
            that have it, which moves raw outputs by up to a few pixels; use ``f32`` for bit-close parity).
    """

    def __init__(
        self,
        model: str | Path,
        device: str = "CPU",
        conf: float = 0.25,
        iou: float = 0.7,
        max_det: int = 300,
        hint: str = "LATENCY",
        precision: str = "",
    ):
        """Read metadata, compile the model on ``device``."""
        self.backend = open_backend(model, device, hint, precision)
        meta = self.backend.meta
        self.names = {int(k): v for k, v in meta.get("names", {}).items()}
        imgsz = meta.get("imgsz", [640, 640])
        self.imgsz = (imgsz, imgsz) if isinstance(imgsz, int) else tuple(imgsz)
        self.end2end = bool(meta.get("end2end", False))
        self.task = meta.get("task", "detect")
        if self.task not in ("detect", "segment", "pose", "obb"):
            raise KDError(f"the runtime decodes detect, segment, pose and obb models; this one is '{self.task}' "
                          "(run it with Ultralytics: YOLO(model).predict)")  # fmt: skip
        self.kpt_shape = tuple(meta.get("kpt_shape", ())) if self.task == "pose" else ()
        self.in_graph = meta.get("in_graph")  # pre/post-processing built into the IR (yolo-kd export e2e=True)
        g = self.in_graph
        if g and (conf < g["conf"] or max_det > g["max_det"] or abs(iou - g["iou"]) > 1e-6):
            raise KDError(
                f"this IR runs NMS inside the graph at conf={g['conf']} iou={g['iou']} max_det={g['max_det']}; "
                "use conf >= that, the same iou and max_det <= that, or the plain *_openvino_model folder"
            )
        self.conf, self.iou, self.max_det = conf, iou, max_det
        # The in-place path's own request. ``infer`` (fallback and benchmarks) is the backend's bare call: OpenVINO's
        # share_inputs call swaps in a tensor around ``x``, which would detach ``_buffer`` from this request.
        self._request = self.backend.request()
        self._buffer = self._usable(self._request.buffer)
        self._canvas = np.empty((*self.imgsz, 3), np.uint8)  # the plain model's letterbox, before conversion

    def _usable(self, buf: np.ndarray | None) -> np.ndarray | None:
        """A request's input array if letterboxing can write into it (None: dynamic or unexpected input)."""
        h, w = self.imgsz
        if buf is None:
            return None
        if self.in_graph:
            return buf if (buf.shape, buf.dtype) == ((1, h, w, 3), np.uint8) else None
        return buf if buf.shape == (1, 3, h, w) and buf.dtype in (np.float32, np.float16) else None

    def preprocess(self, img: np.ndarray) -> tuple[np.ndarray, tuple]:
        """Letterbox one BGR image to the model's input size."""
        return letterbox(img, self.imgsz)

    def to_input(self, x: np.ndarray) -> np.ndarray:
        """The letterboxed uint8 BGR image as the model wants it (as is for an in-graph IR, else RGB NCHW float)."""
        return x[None] if self.in_graph else to_input([x])

    def infer(self, x: np.ndarray) -> np.ndarray:
        """The bare model call on a prepared input; its first output, valid until the next call.

        Without copies where the backend allows (0.13-0.18 ms less per frame at 320 on OpenVINO); ``postprocess``
        copies what it keeps.
        """
        return self.backend(x)[0]

    def first(self, output: np.ndarray) -> np.ndarray:
        """One image's raw output: the in-graph IR's (n, 6) rows, or batch element 0 of the plain output."""
        return output if self.in_graph else output[0]

    def postprocess(
        self, raw: np.ndarray, ratio_pad: tuple, shape0: tuple, path: str = "", proto: np.ndarray | None = None
    ) -> Detections:
        """Decode one image's raw output (and a segmentation model's prototypes) into Detections in original pixels.

        Masks are Ultralytics' predictor's input-size masks (``task_ops.process_mask``; detections whose mask is empty
        are dropped, as there) mapped onto the original image, computed inside each box only (``masks_on_image``).
        """
        raw = raw if raw.dtype == np.float32 else raw.astype(np.float32)
        if self.task == "obb":
            return self._rotated(raw, ratio_pad, path)
        if self.in_graph:  # rows [class, score, x1, y1, x2, y2], already suppressed and sorted
            r = raw[raw[:, 1] > self.conf][: self.max_det]
            box, score, cls, extra = r[:, 2:6], r[:, 1], r[:, 0], r[:, 6:]
        else:
            d = decode(raw, self.conf, self.iou, self.max_det, nc=len(self.names), end2end=self.end2end)
            box, score, cls, extra = d[:, :4], d[:, 4], d[:, 5], d[:, 6:]
        masks = kpts = None
        if self.task == "segment" and proto is not None:
            keep, masks = masks_on_image(proto, extra, box, self.imgsz, ratio_pad, shape0)
            box, score, cls = box[keep], score[keep], cls[keep]
        elif self.task == "pose":
            kpts = scale_keypoints(extra.reshape(len(extra), *self.kpt_shape), ratio_pad, shape0)
        boxes = scale_boxes(box, ratio_pad, shape0)
        return Detections(boxes, score, cls.astype(int), self.names, path, masks, kpts)

    def _rotated(self, raw: np.ndarray, ratio_pad: tuple, path: str) -> Detections:
        """An obb model's output -> Detections with ``xywhr`` (and their enclosing boxes) in original pixels."""
        if self.end2end:  # NMS-free rows: x, y, w, h, score, class, angle (only filtered, as detection's)
            d = decode(raw, self.conf, self.iou, self.max_det, end2end=True)
        else:
            d = decode_rotated(raw, self.conf, self.iou, self.max_det, len(self.names))
        xywhr = scale_rotated(np.concatenate([d[:, :4], d[:, 6:7]], 1), ratio_pad)
        pts = corners(xywhr)
        boxes = np.concatenate([pts.min(1), pts.max(1)], 1)
        return Detections(boxes, d[:, 4], d[:, 5].astype(int), self.names, path, xywhr=xywhr)

    def __call__(self, image: np.ndarray | str | Path) -> Detections:
        """Synchronous inference on one image (array in BGR, or a path): lowest latency.

        A BGR uint8 frame is letterboxed straight into the request's own input buffer (no per-frame canvas or input
        copy: ~1 ms less per frame on a plain IR at 640, 0.05-0.08 ms on an in-graph IR at 320; docs/benchmarks.md 4g).
        One Detector runs one synchronous call at a time; use ``predict_many`` or one Detector per thread.
        """
        path = "" if isinstance(image, np.ndarray) else str(image)
        img = image if isinstance(image, np.ndarray) else read_image(image)
        if not self._fits(img):
            x, rp = self.preprocess(img)
            outs = self.backend(self.to_input(x))
        else:
            rp = self._fill(self._buffer, img)
            outs = self._request.run()
        return self.postprocess(self.first(outs[0]), rp, img.shape[:2], path, self._proto(outs))

    def _proto(self, outs: list[np.ndarray]) -> np.ndarray | None:
        """A segmentation model's (32, mh, mw) prototypes of image 0 (its second output); None for other tasks."""
        return outs[1][0] if self.task == "segment" and len(outs) > 1 else None

    def _fits(self, img: np.ndarray) -> bool:
        """Whether ``img`` can be letterboxed into a request's input array (a BGR uint8 frame, fixed shape)."""
        return self._buffer is not None and img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8

    def _fill(self, buf: np.ndarray, img: np.ndarray) -> tuple:
        """Letterbox ``img`` into a request's input array ``buf`` (converted on a plain model); return the ratio/pad."""
        if self.in_graph:
            return letterbox(img, self.imgsz, out=buf[0])[1]
        rp = letterbox(img, self.imgsz, out=self._canvas)[1]
        to_input([self._canvas], out=buf)
        return rp

    def predict_many(self, images: list, jobs: int = 0) -> list[Detections]:
        """Throughput mode: several requests in flight over many images; results in input order.

        The requests are started and waited for in turn (no ``AsyncInferQueue``: with it and post-processing callbacks,
        6 of 48 processes here aborted at exit, "terminate called without an active exception"; docs/benchmarks.md 4g).

        Args:
            images (list): BGR arrays or paths.
            jobs (int): Requests in flight (0: the number the backend asks for; on OpenVINO use
                ``hint="THROUGHPUT"``).
        """
        n = jobs or self.backend.requests_wanted()
        requests = [self.backend.request() for _ in range(max(n, 1))]
        running: list[tuple | None] = [None] * len(requests)  # (index, original shape, ratio/pad, path) per request
        out: list[Detections | None] = [None] * len(images)

        def collect(k: int) -> None:
            if running[k] is not None:
                outs = requests[k].wait()
                i, shape0, rp, path = running[k]
                out[i] = self.postprocess(self.first(outs[0]), rp, shape0, path, self._proto(outs))
                running[k] = None

        try:
            for i, im in enumerate(images):
                k = i % len(requests)
                collect(k)  # the oldest request in flight
                img = im if isinstance(im, np.ndarray) else read_image(im)
                if self._fits(img) and self._usable(requests[k].buffer) is not None:
                    rp = self._fill(requests[k].buffer, img)
                    requests[k].start()
                else:
                    x, rp = self.preprocess(img)
                    requests[k].start(self.to_input(x))
                running[k] = (i, img.shape[:2], rp, "" if isinstance(im, np.ndarray) else str(im))
        except BaseException:  # an unreadable image: no request is left running when its error propagates
            for k, r in enumerate(running):
                if r is not None:
                    requests[k].wait()
            raise
        for k in range(len(requests)):
            collect(k)
        return out
