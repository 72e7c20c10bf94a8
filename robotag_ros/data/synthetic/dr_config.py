"""Domain-randomisation settings for the synthetic renderer: dataclass defaults + YAML overrides.

Every knob of the randomiser lives here with a sane default; a YAML file (config/synth/*.yaml) only
names the knobs it changes. Ranges are ``[low, high]`` pairs sampled uniformly. Angles in degrees
in the YAML (people read them), lengths in metres, intrinsics in pixels.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from robotag_ros.config_merge import merge_into

Range = list  # [low, high], sampled uniformly


@dataclass
class CameraConfig:
    """Camera placed on a sphere around the robot, looking at a jittered point on it."""

    distance_m: Range = field(default_factory=lambda: [0.9, 2.0])
    azimuth_deg: Range = field(default_factory=lambda: [-180.0, 180.0])
    elevation_deg: Range = field(default_factory=lambda: [-10.0, 60.0])
    roll_deg: Range = field(default_factory=lambda: [-15.0, 15.0])
    # Look-at point: a random keypoint's position plus this jitter (metres, per axis).
    look_at_jitter_m: float = 0.15
    look_at_height_m: Range = field(default_factory=lambda: [0.2, 0.6])
    # Intrinsics for a 640x480-like lens, scaled to the output size; fx=fy*aspect_jitter.
    fov_y_deg: Range = field(default_factory=lambda: [40.0, 65.0])
    aspect_jitter: Range = field(default_factory=lambda: [0.98, 1.02])
    principal_jitter_frac: float = 0.03  # cx, cy offset from the centre as a fraction of W, H
    # Fixed [fx, fy, cx, cy] pixels (a known camera) instead of the random intrinsics above.
    intrinsics_px: list | None = None
    # A frame needs at least this many keypoints inside the image: up to max_resample camera
    # poses per joint sample, up to max_joint_resample joint samples; else the best try is kept.
    min_keypoints_in_image: int = 5
    max_resample: int = 20
    max_joint_resample: int = 5


@dataclass
class LightConfig:
    """Directional/point lights with random direction, colour and intensity."""

    count: Range = field(default_factory=lambda: [1, 3])
    diffuse: Range = field(default_factory=lambda: [0.3, 0.9])
    ambient: Range = field(default_factory=lambda: [0.1, 0.4])
    specular: Range = field(default_factory=lambda: [0.0, 0.4])
    colour_tint: float = 0.2  # per-channel multiplicative jitter of the light colour
    distance_m: Range = field(default_factory=lambda: [1.5, 4.0])
    # The first light, the key light, casts shadows (on the room's floor and table, and the robot
    # on itself) in frames with a room; shadows cost ~4x render time on llvmpipe.
    shadows: bool = False
    # The key light's elevation above the base plane (degrees; null: as the other lights, 6-80).
    key_elevation_deg: Range | None = None


@dataclass
class ColourConfig:
    """Robot and distractor colours (RGB in [0, 1]) and material."""

    robot_mode: str = 'mixed'  # 'per_link' random colours, 'uniform' one colour, 'mixed' either
    # Share of frames in which the robot wears its own colours (its meshes' materials, jittered
    # by own_jitter per channel) instead of robot_mode's random ones.
    own_prob: float = 0.0
    own_jitter: float = 0.1
    robot_value: Range = field(default_factory=lambda: [0.15, 1.0])
    robot_saturation: Range = field(default_factory=lambda: [0.0, 0.8])
    specular: Range = field(default_factory=lambda: [0.0, 0.6])
    shininess: Range = field(default_factory=lambda: [0.0, 0.8])


@dataclass
class DistractorConfig:
    """Random boxes/spheres/cylinders/capsules floating around the robot, some in front of it."""

    count: Range = field(default_factory=lambda: [0, 6])
    size_m: Range = field(default_factory=lambda: [0.02, 0.15])
    # Probability that a distractor is placed between the camera and the robot (occluder).
    occluder_prob: float = 0.3
    occluder_size_scale: float = 0.5  # occluders sit near the camera: keep them from hiding all
    region_m: float = 1.2  # half-width of the cube around the base where others are placed


@dataclass
class BackgroundConfig:
    """Procedural backgrounds composited behind everything the renderer drew."""

    kinds: list = field(default_factory=lambda: [
        'noise', 'gradient', 'checkerboard', 'shapes', 'flat'])
    weights: list = field(default_factory=lambda: [1.0, 1.0, 1.0, 1.5, 0.3])
    shapes_count: Range = field(default_factory=lambda: [5, 40])
    checker_cells: Range = field(default_factory=lambda: [3, 20])
    value: Range = field(default_factory=lambda: [0.0, 1.0])


@dataclass
class RoomConfig:
    """The room around the robot (data/synthetic/room.py): a floor, a table or pedestal under the
    base, walls; 'none' frames float the robot over a 2D background, as without a room."""

    modes: list = field(default_factory=lambda: ['floor', 'table', 'none'])
    weights: list = field(default_factory=lambda: [0.0, 0.0, 1.0])  # default: no room
    table_half_extent_m: Range = field(default_factory=lambda: [0.2, 0.8])  # x and y each
    table_height_m: Range = field(default_factory=lambda: [0.4, 1.0])       # top above floor
    walls: Range = field(default_factory=lambda: [0, 3])
    wall_distance_m: Range = field(default_factory=lambda: [0.5, 3.0])  # beyond the camera
    surface_value: Range = field(default_factory=lambda: [0.35, 1.0])   # colour of floor etc.
    floor_texture_tiles: Range = field(default_factory=lambda: [0.3, 2.0])  # per metre
    # Textures of floor, table and walls: procedural like the 2D backgrounds.
    textures: BackgroundConfig = field(default_factory=lambda: BackgroundConfig(
        kinds=['noise', 'gradient', 'checkerboard', 'shapes', 'flat'],
        weights=[2.0, 1.0, 1.0, 0.5, 1.0], value=[0.2, 1.0]))
    # A frame with a room keeps every keypoint off the base link this far above the support
    # surface (arms do not reach through their table), and the camera this far above the floor.
    min_keypoint_height_m: float = 0.05
    camera_clearance_m: float = 0.15


@dataclass
class ImageAugConfig:
    """Post-render image corruptions (applied to the composited RGB only, never to labels)."""

    blur_prob: float = 0.3
    blur_sigma_px: Range = field(default_factory=lambda: [0.3, 1.5])
    noise_prob: float = 0.5
    noise_sigma: Range = field(default_factory=lambda: [0.0, 0.04])  # of the [0, 1] range
    brightness: Range = field(default_factory=lambda: [0.75, 1.25])
    contrast: Range = field(default_factory=lambda: [0.75, 1.25])
    saturation: Range = field(default_factory=lambda: [0.7, 1.3])
    hue_shift_deg: Range = field(default_factory=lambda: [-8.0, 8.0])
    jpeg_quality: int = 90


@dataclass
class DRConfig:
    """All domain-randomisation knobs of one synthetic data set."""

    name: str = 'dr_default'
    camera: CameraConfig = field(default_factory=CameraConfig)
    lights: LightConfig = field(default_factory=LightConfig)
    colours: ColourConfig = field(default_factory=ColourConfig)
    distractors: DistractorConfig = field(default_factory=DistractorConfig)
    background: BackgroundConfig = field(default_factory=BackgroundConfig)
    room: RoomConfig = field(default_factory=RoomConfig)
    image: ImageAugConfig = field(default_factory=ImageAugConfig)
    save_mask: bool = True
    save_depth: bool = True


def load_dr_config(path: str | Path | None = None) -> DRConfig:
    """Load a DR config: defaults, overridden by the YAML at `path` (None: defaults only)."""
    config = DRConfig()
    if path is None:
        return config
    path = Path(path)
    with open(path) as stream:
        overrides = yaml.safe_load(stream) or {}
    return merge_into(config, overrides, str(path))


def dr_config_to_dict(config: DRConfig) -> dict:
    """Plain-dict form (for writing the merged config next to a data set)."""
    return dataclasses.asdict(config)
