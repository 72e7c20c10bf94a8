"""The DREAM (NDDS) folder format: file names, units and axes shared by the writer and reader.

Lengths in DREAM files are centimetres in synthetic sets and metres in real ones; everything
outside this boundary is metres. ``quaternion_xyzw`` follows the Unreal convention that DREAM's
readers undo with ``R_cam_base = R_file @ R_NORMAL_UE``.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

CAMERA_SETTINGS_FILE = '_camera_settings.json'
OBJECT_SETTINGS_FILE = '_object_settings.json'
RGB_SUFFIX = '.rgb.jpg'
FRAME_JSON_SUFFIX = '.json'
# Our extras: names that no DREAM reader takes for a frame (no digit-led .json, no .jpg).
MASK_SUFFIX = '.robot_mask.png'       # uint8 {0, 255}
DEPTH_SUFFIX = '.depth_mm.png'        # uint16 millimetres, 0 = no depth
# ... kept in a subfolder: DREAM picks the image extension by counting the folder's png and jpg
# files, so two PNGs per frame beside one JPEG would make it look for NNNNNN.rgb.png. Folders
# written before kept them beside the frames; readers look in both places.
EXTRAS_DIR = 'robotag_extras'
FRAME_NAME_RE = re.compile(r'^(\d+)\.json$')
IMAGE_SUFFIXES = ('.rgb.jpg', '.rgb.png', '.jpg', '.png')

R_NORMAL_UE = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
CM_PER_M = 100.0


def frame_stem(frame_index: int) -> str:
    """Six-digit frame name, as NDDS writes it."""
    return f'{int(frame_index):06d}'


def extra_path(json_path: str | Path, suffix: str) -> Path | None:
    """The extra file (``MASK_SUFFIX``, ``DEPTH_SUFFIX``) of the frame ``NNNNNN.json``: in
    ``EXTRAS_DIR`` (this layout) or beside the frame (older sets); None when it has none."""
    json_path = Path(json_path)
    name = json_path.name[:-len(FRAME_JSON_SUFFIX)] + suffix
    for candidate in (json_path.parent / EXTRAS_DIR / name, json_path.with_name(name)):
        if candidate.is_file():
            return candidate
    return None
