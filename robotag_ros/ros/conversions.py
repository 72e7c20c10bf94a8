"""Convert sensor_msgs Image and CameraInfo to numpy (HxWx3 uint8 RGB, 3x3 K) and back.

Uses ROS 2 ``cv_bridge`` where it is installed and works; otherwise a small converter of its own.
Both paths first validate the message so that every refusal names its cause.
"""
from __future__ import annotations

import numpy as np
from sensor_msgs.msg import CameraInfo, Image
from robotag_ros.geometry.camera import pinhole_problem

# encoding -> (channels, channel order); 8-bit per channel only.
SUPPORTED_ENCODINGS = {
    'rgb8': (3, 'rgb'),
    'bgr8': (3, 'bgr'),
    'rgba8': (4, 'rgba'),
    'bgra8': (4, 'bgra'),
    'mono8': (1, 'mono'),
}


class ImageConversionError(ValueError):
    """An Image message that cannot be turned into an RGB array; the text names the cause."""


class CameraInfoError(ValueError):
    """A CameraInfo message whose intrinsics cannot be used; the text names the cause and the
    field, ``kind`` its class (see :func:`robotag_ros.geometry.camera.pinhole_problem`)."""

    def __init__(self, text: str, kind: str = 'invalid'):
        super().__init__(text)
        self.kind = kind


def _load_cv_bridge():
    # The PyPI `cv-bridge` is ROS 1's and breaks on numpy 2: accept only a bridge that converts.
    try:
        from cv_bridge import CvBridge
        bridge = CvBridge()
        probe = Image(height=1, width=1, encoding='rgb8', step=3, data=bytes(3))
        bridge.imgmsg_to_cv2(probe, desired_encoding='rgb8')
        return bridge
    except Exception:   # noqa: BLE001 - any failure means: use our own converter
        return None


_CV_BRIDGE = _load_cv_bridge()


def check_image(msg: Image) -> tuple[int, str]:
    """Validate encoding, size and buffer length; return (channels, order) or raise."""
    encoding = msg.encoding.lower()
    if encoding not in SUPPORTED_ENCODINGS:
        hint = (' (16-bit and depth images are not colour input)'
                if encoding in ('16uc1', 'mono16', 'rgb16', 'bgr16', '32fc1') else '')
        raise ImageConversionError(
            f'unsupported image encoding {msg.encoding!r}{hint}; '
            f'supported: {", ".join(SUPPORTED_ENCODINGS)}')
    channels, order = SUPPORTED_ENCODINGS[encoding]
    if msg.height == 0 or msg.width == 0:
        raise ImageConversionError(f'empty image ({msg.width}x{msg.height} pixels)')
    row_bytes = msg.width * channels
    if msg.step < row_bytes:
        raise ImageConversionError(
            f'image step {msg.step} bytes is shorter than width x channels = {row_bytes} '
            f'for {msg.encoding} {msg.width}x{msg.height}')
    needed = msg.height * msg.step
    if len(msg.data) < needed:
        raise ImageConversionError(
            f'image data is {len(msg.data)} bytes, shorter than height x step = {needed}')
    return channels, order


def image_to_rgb(msg: Image) -> np.ndarray:
    """Return the image as a contiguous HxWx3 uint8 RGB array (a copy, owned by the caller)."""
    channels, order = check_image(msg)
    if _CV_BRIDGE is not None:
        return np.ascontiguousarray(_CV_BRIDGE.imgmsg_to_cv2(msg, desired_encoding='rgb8'))
    buffer = np.frombuffer(msg.data, dtype=np.uint8, count=msg.height * msg.step)
    rows = buffer.reshape(msg.height, msg.step)[:, :msg.width * channels]
    pixels = rows.reshape(msg.height, msg.width, channels)
    if order == 'mono':
        return np.repeat(pixels, 3, axis=2)
    if order in ('bgr', 'bgra'):
        return np.ascontiguousarray(pixels[:, :, 2::-1])
    return np.ascontiguousarray(pixels[:, :, :3])


def rgb_to_image(image_rgb: np.ndarray, header=None, encoding: str = 'rgb8') -> Image:
    """Build an Image from an HxWx3 uint8 RGB array, written in ``encoding``."""
    image_rgb = np.asarray(image_rgb)
    if image_rgb.dtype != np.uint8 or image_rgb.ndim != 3 or image_rgb.shape[2] != 3:
        raise ImageConversionError(
            f'expected an HxWx3 uint8 RGB array, got {image_rgb.dtype} {image_rgb.shape}')
    encoding = encoding.lower()
    if encoding not in SUPPORTED_ENCODINGS:
        raise ImageConversionError(f'cannot write encoding {encoding!r}')
    channels, order = SUPPORTED_ENCODINGS[encoding]
    if order == 'mono':
        # ITU-R BT.601 luma, as OpenCV's RGB2GRAY.
        weights = np.array([0.299, 0.587, 0.114])
        pixels = np.clip(np.rint(image_rgb @ weights), 0, 255).astype(np.uint8)[:, :, None]
    else:
        pixels = image_rgb[:, :, ::-1] if order.startswith('bgr') else image_rgb
        if channels == 4:
            alpha = np.full(image_rgb.shape[:2] + (1,), 255, np.uint8)
            pixels = np.concatenate([pixels, alpha], axis=2)
    pixels = np.ascontiguousarray(pixels)
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = pixels.shape[:2]
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = msg.width * channels
    msg.data = pixels.tobytes()
    return msg


def camera_info_to_K(msg: CameraInfo) -> np.ndarray:
    """Return the 3x3 intrinsic matrix K (pixels) of a CameraInfo, refusing one that is not a
    plausible pinhole camera for its width x height (the error names the field of ``k``)."""
    K = np.asarray(msg.k, dtype=np.float64).reshape(3, 3)
    problem = pinhole_problem(K, int(msg.width), int(msg.height))
    if problem is not None:
        kind, text = problem
        raise CameraInfoError(f'camera_info {text}', kind)
    return K


def K_to_camera_info(K: np.ndarray, width: int, height: int, header=None) -> CameraInfo:
    """Build a distortion-free pinhole CameraInfo for intrinsics K (pixels) and image size."""
    K = np.asarray(K, dtype=np.float64).reshape(3, 3)
    msg = CameraInfo()
    if header is not None:
        msg.header = header
    msg.width, msg.height = int(width), int(height)
    msg.distortion_model = 'plumb_bob'
    msg.d = [0.0] * 5
    msg.k = K.ravel().tolist()
    msg.r = np.eye(3).ravel().tolist()
    P = np.zeros((3, 4))
    P[:, :3] = K
    msg.p = P.ravel().tolist()
    return msg
