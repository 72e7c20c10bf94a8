"""Procedural background images (noise, gradients, checkerboards, random shapes, flat colour).

Nothing is downloaded: every background is drawn from a numpy Generator, so a seed fixes it.
All functions return (H, W, 3) uint8 RGB.
"""
from __future__ import annotations

import cv2
import numpy as np

BACKGROUND_KINDS = ('noise', 'gradient', 'checkerboard', 'shapes', 'flat')


def _random_colour(rng: np.random.Generator, value_range=(0.0, 1.0)) -> np.ndarray:
    low, high = value_range
    return rng.uniform(low, high, size=3) * 255.0


def noise_background(rng, height, width, value_range=(0.0, 1.0)) -> np.ndarray:
    """Smooth value noise: a few octaves of coarse noise summed on a small grid, then upsampled."""
    grid_h, grid_w = max(8, height // 4), max(8, width // 4)  # detail finer than this is blurred
    image = np.zeros((grid_h, grid_w, 3), np.float32)
    weight_sum = 0.0
    for octave in range(int(rng.integers(1, 4))):
        cells = int(rng.integers(2, 8)) * (2 ** octave)
        coarse = rng.uniform(0.0, 1.0, size=(cells, cells, 3)).astype(np.float32)
        weight = 0.5 ** octave
        image += weight * cv2.resize(coarse, (grid_w, grid_h), interpolation=cv2.INTER_CUBIC)
        weight_sum += weight
    low, high = value_range
    image = (low + (high - low) * np.clip(image / weight_sum, 0.0, 1.0)) * 255.0
    return cv2.resize(image.astype(np.uint8), (width, height), interpolation=cv2.INTER_LINEAR)


def gradient_background(rng, height, width, value_range=(0.0, 1.0)) -> np.ndarray:
    """Linear gradient between two random colours along a random direction."""
    angle = rng.uniform(0.0, 2.0 * np.pi)
    start, end = _random_colour(rng, value_range), _random_colour(rng, value_range)
    # A linear ramp is exact under bilinear upsampling: compute it on a small grid.
    grid_h, grid_w = max(2, height // 8), max(2, width // 8)
    ys = np.linspace(0.0, height, grid_h, dtype=np.float32)[:, None]
    xs = np.linspace(0.0, width, grid_w, dtype=np.float32)[None, :]
    t = xs * np.cos(angle) + ys * np.sin(angle)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    small = start[None, None, :] * (1.0 - t[..., None]) + end[None, None, :] * t[..., None]
    return cv2.resize(small.astype(np.uint8), (width, height), interpolation=cv2.INTER_LINEAR)


def checkerboard_background(rng, height, width, cells_range=(3, 20),
                            value_range=(0.0, 1.0)) -> np.ndarray:
    """Checkerboard of two random colours, random cell count, slightly rotated."""
    cells = int(rng.integers(cells_range[0], cells_range[1] + 1))
    cell_px = max(2, max(height, width) // cells)
    ys, xs = np.mgrid[0:height, 0:width]
    board = ((xs // cell_px + ys // cell_px) % 2).astype(bool)
    image = np.empty((height, width, 3), np.uint8)
    image[board] = _random_colour(rng, value_range)
    image[~board] = _random_colour(rng, value_range)
    angle = rng.uniform(-30.0, 30.0)
    rotation = cv2.getRotationMatrix2D((width / 2.0, height / 2.0), angle, 1.5)
    return cv2.warpAffine(image, rotation, (width, height), borderMode=cv2.BORDER_REFLECT)


def shapes_background(rng, height, width, count_range=(5, 40),
                      value_range=(0.0, 1.0)) -> np.ndarray:
    """Random filled circles, rectangles and polygons over a flat or gradient base."""
    if rng.uniform() < 0.5:
        image = np.ascontiguousarray(gradient_background(rng, height, width, value_range))
    else:
        image = np.empty((height, width, 3), np.uint8)
        image[:] = _random_colour(rng, value_range)
    size = max(height, width)
    for _ in range(int(rng.integers(count_range[0], count_range[1] + 1))):
        colour = tuple(float(c) for c in _random_colour(rng, value_range))
        kind = int(rng.integers(0, 3))
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        extent = int(rng.uniform(0.03, 0.3) * size)
        if kind == 0:
            cv2.circle(image, centre, extent, colour, -1, lineType=cv2.LINE_AA)
        elif kind == 1:
            corner = (centre[0] + int(rng.integers(-extent, extent + 1)),
                      centre[1] + int(rng.integers(-extent, extent + 1)))
            cv2.rectangle(image, centre, corner, colour, -1)
        else:
            points = np.array(centre) + rng.integers(-extent, extent + 1, size=(
                int(rng.integers(3, 7)), 2))
            cv2.fillPoly(image, [points.astype(np.int32)], colour, lineType=cv2.LINE_AA)
    return image


def flat_background(rng, height, width, value_range=(0.0, 1.0)) -> np.ndarray:
    """One random colour."""
    image = np.empty((height, width, 3), np.uint8)
    image[:] = _random_colour(rng, value_range)
    return image


def random_background(rng: np.random.Generator, height: int, width: int, config) -> np.ndarray:
    """A background of a kind drawn from `config.kinds` by `config.weights` (BackgroundConfig)."""
    kinds = list(config.kinds)
    unknown = sorted(set(kinds) - set(BACKGROUND_KINDS))
    if unknown:
        raise ValueError(f'background.kinds: unknown {unknown} (known: {BACKGROUND_KINDS})')
    weights = np.asarray(config.weights, dtype=float)
    if len(weights) != len(kinds):
        raise ValueError('background.weights must have one weight per background.kinds entry')
    kind = kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))]
    value_range = tuple(config.value)
    if kind == 'noise':
        return noise_background(rng, height, width, value_range)
    if kind == 'gradient':
        return gradient_background(rng, height, width, value_range)
    if kind == 'checkerboard':
        return checkerboard_background(rng, height, width, tuple(config.checker_cells),
                                       value_range)
    if kind == 'shapes':
        return shapes_background(rng, height, width, tuple(config.shapes_count), value_range)
    return flat_background(rng, height, width, value_range)
