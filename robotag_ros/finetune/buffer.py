"""A bounded on-disk ring buffer of the frames the node sees, for online fine-tuning.

Each frame is ``frame_<seq>.jpg`` (RGB as JPEG) plus ``frame_<seq>.json`` (intrinsics K in
pixels, stamp, image size). Both are written atomically (temporary file + rename) and the JSON
last, so a reader only ever sees complete frames: a frame counts once its JSON exists. The buffer
keeps the newest ``capacity`` frames and deletes older ones. A fixed, deterministic part of the
frames (every ``holdout_every``-th sequence number) is held out: the fine-tuning process never
trains on it and the node scores candidate models on it.
"""
from __future__ import annotations

import json
import os
import queue
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
from robotag_ros.atomic_io import atomic_write_bytes
from robotag_ros.data.bags.unlabelled import letterbox_frame, unlabelled_sample

FRAME_RE = re.compile(r'^frame_(\d{12})\.json$')
DEFAULT_HOLDOUT_EVERY = 5


@dataclass(frozen=True)
class BufferedFrame:
    """One complete frame of the buffer."""

    seq: int
    image_path: Path
    meta_path: Path

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        """(HxWx3 uint8 RGB, 3x3 K pixels); ValueError naming the file if unreadable."""
        meta = json.loads(self.meta_path.read_text())
        bgr = cv2.imread(str(self.image_path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f'{self.image_path}: not a readable image')
        return (np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)),
                np.asarray(meta['K'], dtype=np.float64).reshape(3, 3))


class FrameBuffer:
    """The ring buffer in ``root``; safe to share between one writer and readers in other
    processes (they see complete frames only)."""

    def __init__(self, root: str | os.PathLike, capacity: int = 500, jpeg_quality: int = 92,
                 holdout_every: int = DEFAULT_HOLDOUT_EVERY):
        if capacity < 1:
            raise ValueError(f'capacity must be >= 1, got {capacity}')
        if holdout_every < 2:
            raise ValueError(f'holdout_every must be >= 2, got {holdout_every}')
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.capacity = int(capacity)
        self.jpeg_quality = int(jpeg_quality)
        self.holdout_every = int(holdout_every)
        self._lock = threading.Lock()
        frames = self.frames()
        self._next_seq = frames[-1].seq + 1 if frames else 0

    def frames(self) -> list[BufferedFrame]:
        """Complete frames, oldest first."""
        found = []
        for path in self.root.iterdir():
            match = FRAME_RE.match(path.name)
            if match:
                image = path.with_suffix('.jpg')
                if image.is_file():
                    found.append(BufferedFrame(int(match.group(1)), image, path))
        return sorted(found, key=lambda frame: frame.seq)

    def is_holdout(self, seq: int) -> bool:
        return seq % self.holdout_every == 0

    def split(self) -> tuple[list[BufferedFrame], list[BufferedFrame]]:
        """(training frames, held-out frames)."""
        frames = self.frames()
        return ([f for f in frames if not self.is_holdout(f.seq)],
                [f for f in frames if self.is_holdout(f.seq)])

    def add(self, image_rgb: np.ndarray, K: np.ndarray, stamp_ns: int = 0) -> BufferedFrame:
        """Store one frame (HxWx3 uint8 RGB, 3x3 K pixels); evict the oldest beyond capacity."""
        image_rgb = np.asarray(image_rgb)
        if image_rgb.ndim != 3 or image_rgb.shape[2] != 3 or image_rgb.dtype != np.uint8:
            raise ValueError(f'image must be HxWx3 uint8 RGB, got {image_rgb.shape} '
                             f'{image_rgb.dtype}')
        ok, jpeg = cv2.imencode('.jpg', cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR),
                                [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        if not ok:
            raise ValueError('JPEG encoding failed')
        with self._lock:
            seq = self._next_seq
            self._next_seq += 1
            stem = self.root / f'frame_{seq:012d}'
            meta = {'seq': seq, 'stamp_ns': int(stamp_ns),
                    'K': np.asarray(K, dtype=np.float64).reshape(3, 3).tolist(),
                    'height': int(image_rgb.shape[0]), 'width': int(image_rgb.shape[1])}
            atomic_write_bytes(stem.with_suffix('.jpg'), jpeg.tobytes())
            atomic_write_bytes(stem.with_suffix('.json'), json.dumps(meta).encode())
            self._evict()
        return BufferedFrame(seq, stem.with_suffix('.jpg'), stem.with_suffix('.json'))

    def _evict(self) -> None:
        frames = self.frames()
        for frame in frames[:max(0, len(frames) - self.capacity)]:
            # JSON first: the frame stops counting before its image goes.
            frame.meta_path.unlink(missing_ok=True)
            frame.image_path.unlink(missing_ok=True)


class FrameRecorder:
    """Samples every ``every_n``-th frame into a FrameBuffer; never raises into the caller.

    With ``asynchronous`` the JPEG encoding and the writes happen on a worker thread behind a
    short queue, so the caller (the node's inference loop) never waits on the disk; when the
    queue is full the frame is dropped and counted.
    """

    def __init__(self, buffer: FrameBuffer, every_n: int = 10, asynchronous: bool = False,
                 queue_size: int = 4):
        if every_n < 1:
            raise ValueError(f'every_n must be >= 1, got {every_n}')
        self.buffer, self.every_n = buffer, int(every_n)
        self.seen = 0
        self.recorded = 0
        self.failed = 0
        self.dropped_queue_full = 0
        self._queue = None
        if asynchronous:
            self._queue = queue.Queue(maxsize=queue_size)
            self._worker = threading.Thread(target=self._drain, name='frame_recorder',
                                            daemon=True)
            self._worker.start()

    def maybe_record(self, image_rgb: np.ndarray, K: np.ndarray, stamp_ns: int = 0) -> bool:
        """Record (or queue) this frame if it is the n-th; says whether it was taken."""
        self.seen += 1
        if (self.seen - 1) % self.every_n:
            return False
        if self._queue is None:
            return self._write(image_rgb, K, stamp_ns)
        try:
            self._queue.put_nowait((np.array(image_rgb, copy=True), np.asarray(K), stamp_ns))
        except queue.Full:
            self.dropped_queue_full += 1
            return False
        return True

    def _write(self, image_rgb, K, stamp_ns) -> bool:
        try:
            self.buffer.add(image_rgb, K, stamp_ns)
        except (OSError, ValueError):
            self.failed += 1   # a full disk must not stop the estimator
            return False
        self.recorded += 1
        return True

    def _drain(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            self._write(*item)
            self._queue.task_done()

    def close(self, timeout_s: float = 5.0) -> None:
        """Finish the queued writes and stop the worker."""
        if self._queue is not None:
            self._queue.put(None)
            self._worker.join(timeout=timeout_s)


class BufferDataset:
    """Buffer frames as unlabelled training samples (stage 2), letterboxed like the estimator.

    Frames that vanish (evicted) or fail to read between listing and loading are skipped:
    ``__getitem__`` falls back to the next readable frame, and ``unreadable`` counts them.
    """

    def __init__(self, frames: Sequence[BufferedFrame], image_size_hw: Sequence[int],
                 num_joints: int, num_keypoints: int):
        if not frames:
            raise ValueError('the frame buffer has no (training) frames yet')
        self.frames = list(frames)
        self.image_size_hw = tuple(int(v) for v in image_size_hw)
        self.num_joints, self.num_keypoints = int(num_joints), int(num_keypoints)
        self.unreadable = 0

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> dict:
        for offset in range(len(self.frames)):
            frame = self.frames[(index + offset) % len(self.frames)]
            try:
                image, K = frame.load()
            except (OSError, ValueError, KeyError, json.JSONDecodeError):
                self.unreadable += 1
                continue
            image, K_network = letterbox_frame(image, K, self.image_size_hw)
            return unlabelled_sample(image, K_network, self.num_joints, self.num_keypoints)
        raise ValueError('no frame of the buffer is readable any more')
