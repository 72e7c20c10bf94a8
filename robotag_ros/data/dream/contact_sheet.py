"""A PNG grid of DREAM frames with their labels drawn (`robotag-contact-sheet`, data/cli.py).

Reads only the frame JSONs and images (no robot needed): keypoints (``projected_location``) as
dots and a skeleton joining consecutive keypoints of the same arm (name prefix ``left_``/``right_``
or none; DREAM lists keypoints base to tip), plus the robot mask outline when the set has masks.
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from robotag_ros.data.dream.format import (FRAME_NAME_RE, IMAGE_SUFFIXES, MASK_SUFFIX,
                                           extra_path)

_COLOURS = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
            (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212)]


def _side(name: str) -> str:
    for prefix in ('left_', 'right_'):
        if name.split('/')[-1].startswith(prefix):
            return prefix
    return ''


def draw_frame(image_rgb: np.ndarray, keypoints: list, mask: np.ndarray | None = None
               ) -> np.ndarray:
    """Draw keypoints ({name, projected_location}) and skeleton on a copy of an RGB image."""
    canvas = np.ascontiguousarray(image_rgb.copy())
    scale = max(1, round(max(canvas.shape[:2]) / 200))
    if mask is not None:
        contours, _ = cv2.findContours((mask > 127).astype(np.uint8), cv2.RETR_EXTERNAL,
                                       cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(canvas, contours, -1, (255, 255, 255), 1, cv2.LINE_AA)
    # Pixel (r, c) covers [c, c+1): its centre (c + 0.5) sits on OpenCV's integer c.
    points = [(int(round(k['projected_location'][0] - 0.5)),
               int(round(k['projected_location'][1] - 0.5))) for k in keypoints]
    for index in range(1, len(keypoints)):
        if _side(keypoints[index]['name']) == _side(keypoints[index - 1]['name']):
            cv2.line(canvas, points[index - 1], points[index], (255, 255, 255), scale + 1,
                     cv2.LINE_AA)
    for index, point in enumerate(points):
        cv2.circle(canvas, point, 2 * scale + 1, _COLOURS[index % len(_COLOURS)], -1, cv2.LINE_AA)
        cv2.circle(canvas, point, 2 * scale + 1, (0, 0, 0), 1, cv2.LINE_AA)
    return canvas


def _frame_files(folder: Path) -> list[tuple[Path, Path]]:
    pairs = []
    for json_path in sorted(folder.iterdir()):
        if not FRAME_NAME_RE.match(json_path.name):
            continue
        stem = json_path.name[:-len('.json')]
        for suffix in IMAGE_SUFFIXES:
            if (folder / (stem + suffix)).exists():
                pairs.append((json_path, folder / (stem + suffix)))
                break
    return pairs


def make_contact_sheet(folder, num_frames: int = 16, tile_px: int = 200,
                       columns: int | None = None) -> np.ndarray:
    """RGB grid of `num_frames` frames spread evenly over the set, each `tile_px` wide."""
    folder = Path(folder)
    pairs = _frame_files(folder)
    if not pairs:
        raise SystemExit(f'{folder}: no DREAM frames (NNNNNN.json + image) found')
    picks = np.unique(np.linspace(0, len(pairs) - 1, min(num_frames, len(pairs))).astype(int))
    columns = columns or int(np.ceil(np.sqrt(len(picks))))
    tiles = []
    for pick in picks:
        json_path, image_path = pairs[pick]
        bgr = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise SystemExit(f'{image_path}: unreadable image')
        keypoints = json.loads(json_path.read_text())['objects'][0]['keypoints']
        mask_path = extra_path(json_path, MASK_SUFFIX)
        mask = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE) if mask_path else None
        drawn = draw_frame(bgr[..., ::-1], keypoints, mask)
        height = int(round(drawn.shape[0] * tile_px / drawn.shape[1]))
        tiles.append(cv2.resize(drawn, (tile_px, height), interpolation=cv2.INTER_AREA))
    tile_h = max(t.shape[0] for t in tiles)
    rows = int(np.ceil(len(tiles) / columns))
    sheet = np.zeros((rows * tile_h, columns * tile_px, 3), np.uint8)
    for index, tile in enumerate(tiles):
        row, col = divmod(index, columns)
        sheet[row * tile_h:row * tile_h + tile.shape[0], col * tile_px:(col + 1) * tile_px] = tile
    return sheet
