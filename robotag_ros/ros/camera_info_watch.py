"""What the estimator node knows of its camera: the last usable CameraInfo (K and size), the
refused ones by kind of fault, and whether camera_info keeps arriving while images do not."""
from __future__ import annotations

import os
import threading
import time

import numpy as np
from sensor_msgs.msg import CameraInfo

from robotag_ros.ros.conversions import CameraInfoError, camera_info_to_K

# camera_info messages in a row, over at least this many seconds, without an image: warn.
IMAGE_SILENCE_INFOS = 3
IMAGE_SILENCE_S = 3.0


class CameraInfoWatch:
    """Thread-safe: the subscriptions write, the node's worker and timer read."""

    def __init__(self):
        self._lock = threading.Lock()
        self._K: np.ndarray | None = None
        self._size: tuple[int, int] | None = None   # (width, height) of the camera_info
        self.refused: dict[str, int] = {}            # kind of fault -> count
        self._last_image_s = time.monotonic()        # start-up counts as "the last image"
        self._infos_since_image = 0
        self._last_info_stamp = None

    def image_arrived(self) -> None:
        with self._lock:
            self._last_image_s, self._infos_since_image = time.monotonic(), 0

    def add(self, msg: CameraInfo) -> CameraInfoError | None:
        """Keep a plausible camera's K and size; a refused one is counted and returned."""
        with self._lock:
            self._infos_since_image += 1
            self._last_info_stamp = msg.header.stamp
        try:
            K = camera_info_to_K(msg)
        except CameraInfoError as error:
            with self._lock:
                self.refused[error.kind] = self.refused.get(error.kind, 0) + 1
            return error
        with self._lock:
            self._K, self._size = K, (msg.width, msg.height)
        return None

    def latest(self) -> tuple[np.ndarray | None, tuple[int, int] | None]:
        """(K, (width, height)) of the last usable camera_info, or (None, None)."""
        with self._lock:
            return self._K, self._size

    def images_missing(self, image_topic: str):
        """When camera_info keeps coming (IMAGE_SILENCE_INFOS messages over IMAGE_SILENCE_S)
        but images do not: (why that may be, diagnostic values, last camera_info stamp); else
        None."""
        with self._lock:
            silent_s = time.monotonic() - self._last_image_s
            infos, stamp = self._infos_since_image, self._last_info_stamp
        if infos < IMAGE_SILENCE_INFOS or silent_s < IMAGE_SILENCE_S:
            return None
        transports = os.environ.get('FASTDDS_BUILTIN_TRANSPORTS', '')
        text = (f'{infos} camera_info messages but no image on {image_topic} for '
                f'{silent_s:.0f} s: check the image topic, and that frames fit the DDS '
                'transport\'s message size'
                + (f' (FASTDDS_BUILTIN_TRANSPORTS={transports})' if transports else '')
                + '; larger frames are lost without an error (see docs/node.md)')
        return text, {'seconds_without_image': round(silent_s, 1),
                      'camera_infos_without_image': infos}, stamp
