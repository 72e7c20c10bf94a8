"""A room around the robot: a floor, a table or pedestal under the base, walls, clutter on them.

Why: in front of a random 2D collage, with no ground and no cast shadows, which side of the arm
the camera sees is close to invisible (benchmarks/view_probe.py: a small head on frozen trunk
features tells front from back at chance), and the fit then prefers mirrored arms. A floor or
table under the base, the shadows a key light throws on it, and walls give the view away.

The base frame is the world: the robot's base sits on the support surface at z = 0 (a table's
top, or the floor), never always on one side of the table (the base is placed anywhere on it).
Everything here draws from its own Generator, so a room never changes the robot, camera or
colour draws of the frames a config without rooms makes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robotag_ros.data.synthetic.backgrounds import random_background
from robotag_ros.data.synthetic.renderer import SCENERY_TEXTURE_PX, SceneryBox

ROOM_MODES = ('floor', 'table', 'none')
# The support surface sits a hair under the base so that the base's bottom face never z-fights.
SURFACE_GAP_M = 0.002
FLOOR_HALF_EXTENT_M = 8.0
MAX_SCENERY_BOXES = 2 + 4  # floor, table, walls


@dataclass
class RoomLayout:
    """What constrains the robot and the camera: mode, floor height, table footprint.

    ``table_box`` is (centre xy (2,), half extents xy (2,)) in the base frame, or None.
    """

    mode: str
    floor_z_m: float | None = None
    table_centre_m: np.ndarray | None = None
    table_half_m: np.ndarray | None = None

    @property
    def has_room(self) -> bool:
        return self.mode != 'none'

    def surface_z_at(self, xy: np.ndarray) -> float:
        """Height of what a thing dropped at ``xy`` lands on (the table top or the floor)."""
        if self.table_centre_m is not None and np.all(
                np.abs(np.asarray(xy) - self.table_centre_m) <= self.table_half_m):
            return -SURFACE_GAP_M
        return float(self.floor_z_m)

    def camera_allowed(self, camera_pos_m: np.ndarray, clearance_m: float) -> bool:
        """Above the floor by ``clearance_m`` and not inside the table."""
        if not self.has_room:
            return True
        if camera_pos_m[2] < self.floor_z_m + clearance_m:
            return False
        if self.table_centre_m is not None and camera_pos_m[2] < clearance_m and np.all(
                np.abs(camera_pos_m[:2] - self.table_centre_m) <= self.table_half_m + clearance_m):
            return False
        return True


def rooms_enabled(config) -> bool:
    """Whether any frame of a RoomConfig gets a room (checks the modes: one-line errors)."""
    unknown = sorted(set(config.modes) - set(ROOM_MODES))
    if unknown:
        raise ValueError(f'room.modes: unknown {unknown} (known: {list(ROOM_MODES)})')
    if len(config.weights) != len(config.modes) or min(config.weights) < 0 \
            or sum(config.weights) <= 0:
        raise ValueError('room.weights: one non-negative weight per room.modes entry, not all 0')
    return any(weight > 0 for mode, weight in zip(config.modes, config.weights)
               if mode != 'none')


def sample_layout(rng: np.random.Generator, config) -> RoomLayout:
    """Draw the mode and, for a table, its footprint and height (config: RoomConfig)."""
    weights = np.asarray(config.weights, dtype=float)
    mode = list(config.modes)[int(rng.choice(len(weights), p=weights / weights.sum()))]
    if mode == 'none':
        return RoomLayout('none')
    if mode == 'floor':
        return RoomLayout('floor', floor_z_m=-SURFACE_GAP_M)
    half = rng.uniform(*config.table_half_extent_m, size=2)
    # The base anywhere on the top (at least 0.1 m in from each edge where the top allows):
    # never a fixed "work area in front" that would tell the side by itself.
    margin = np.maximum(half - 0.1, 0.0)
    centre = rng.uniform(-margin, margin)
    height = rng.uniform(*config.table_height_m)
    return RoomLayout('table', floor_z_m=-SURFACE_GAP_M - height, table_centre_m=centre,
                      table_half_m=half)


def _texture(rng: np.random.Generator, config) -> np.ndarray:
    return random_background(rng, SCENERY_TEXTURE_PX, SCENERY_TEXTURE_PX, config.textures)


def _box(half, centre, yaw_rad, rgba, texture, texrepeat) -> SceneryBox:
    T = np.eye(4)
    c, s = np.cos(yaw_rad), np.sin(yaw_rad)
    T[:3, :3] = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    T[:3, 3] = centre
    return SceneryBox(half_size_m=np.asarray(half, float), T_base_object=T,
                      rgba=np.asarray(rgba, float), texture=texture, texrepeat=float(texrepeat))


def _tint(rng: np.random.Generator, value_range) -> np.ndarray:
    return np.append(rng.uniform(*value_range, size=3), 1.0)


def sample_scenery(rng: np.random.Generator, config, layout: RoomLayout,
                   camera_pos_m: np.ndarray) -> list[SceneryBox]:
    """The room's boxes for a frame whose camera sits at ``camera_pos_m`` (base frame)."""
    if not layout.has_room:
        return []
    value = config.surface_value
    boxes = [_box((FLOOR_HALF_EXTENT_M, FLOOR_HALF_EXTENT_M, 0.01),
                  (0.0, 0.0, layout.floor_z_m - 0.01), rng.uniform(0, np.pi), _tint(rng, value),
                  _texture(rng, config), rng.uniform(*config.floor_texture_tiles))]
    if layout.table_centre_m is not None:
        height = -SURFACE_GAP_M - layout.floor_z_m
        boxes.append(_box((*layout.table_half_m, height / 2.0),
                          (*layout.table_centre_m, -SURFACE_GAP_M - height / 2.0), 0.0,
                          _tint(rng, value), _texture(rng, config), rng.uniform(1.0, 3.0)))
    camera_xy = np.asarray(camera_pos_m[:2], float)
    for _ in range(int(rng.integers(config.walls[0], config.walls[1] + 1))):
        direction = rng.uniform(0.0, 2.0 * np.pi)
        normal = np.array([np.cos(direction), np.sin(direction)])
        # Beyond the camera along the wall's normal: a wall never stands between it and the arm.
        distance = max(float(camera_xy @ normal), 0.0) + rng.uniform(*config.wall_distance_m)
        half_width = rng.uniform(1.5, 5.0)
        height = rng.uniform(2.2, 3.2)
        centre = (*(distance * normal), layout.floor_z_m + height / 2.0)
        boxes.append(_box((0.03, half_width, height / 2.0), centre, direction,
                          _tint(rng, value), _texture(rng, config), rng.uniform(1.0, 4.0)))
    return boxes[:MAX_SCENERY_BOXES]
