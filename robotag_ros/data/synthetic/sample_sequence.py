"""Render a short synthetic recording of a robot: smooth joint motion seen by one fixed camera.

The project's sample sequence (the demo's and the proof-of-life test's input) is made here with
the synthetic renderer's machinery (MuJoCo meshes posed by our own forward kinematics), but unlike
domain-randomised training frames it looks like a camera recording: one camera pose, intrinsics,
lighting, robot colour and background for the whole sequence, and joint angles that move smoothly
between a few random configurations. Everything random comes from one seed (held out from
training); the same seed on the same renderer gives the same pixels.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from robotag_ros.data.synthetic.backgrounds import shapes_background
from robotag_ros.data.synthetic.camera_sampling import in_image, look_at, project
from robotag_ros.data.synthetic.renderer import Light, MujocoRobotRenderer, SceneState

# A seed no training set uses (robotag-synth runs use small seeds): held-out frames.
SAMPLE_SEED = 20261124
SAMPLE_NUM_FRAMES = 30
SAMPLE_RATE_HZ = 15.0
SAMPLE_HEIGHT, SAMPLE_WIDTH = 480, 640
# Intrinsics of a 640x480 RGB-D camera's colour stream (RealSense D435 class), pixels.
SAMPLE_INTRINSICS_PX = (615.0, 615.0, 320.0, 240.0)
SAMPLE_FRAME_ID = 'camera_color_optical_frame'
# Sequence start: a fixed stamp (2026-11-24 00:00:00 UTC), so the bag is reproducible.
SAMPLE_START_NS = 1_795_478_400_000_000_000

_WAYPOINTS = 4             # random configurations the motion passes through
_JOINT_RANGE_USED = 0.45   # waypoints stay within the middle 45 % of each joint range
_IMAGE_MARGIN_PX = 25      # every keypoint of every frame stays this far inside the image
_MIN_KEYPOINT_HEIGHT_M = 0.05   # above the floor the robot stands on (its base excepted)
_MAX_TRIES = 100


@dataclass
class SequenceFrame:
    """One frame of a rendered sequence.

    rgb (H, W, 3) uint8; joint_angles_rad (n,); T_cam_base (4, 4) metres (base points into the
    camera optical frame); K (3, 3) pixels; stamp_ns the frame's time stamp, nanoseconds.
    """

    rgb: np.ndarray
    joint_angles_rad: np.ndarray
    T_cam_base: np.ndarray
    K: np.ndarray
    stamp_ns: int


def minimum_jerk(t: np.ndarray) -> np.ndarray:
    """Minimum-jerk blend 10t^3 - 15t^4 + 6t^5: 0 -> 1, zero end velocity and acceleration."""
    return t ** 3 * (10.0 - 15.0 * t + 6.0 * t * t)


def joint_trajectory(waypoints_rad: np.ndarray, num_frames: int) -> np.ndarray:
    """(num_frames, n) joint angles moving through the (W, n) waypoints, resting at each one."""
    waypoints_rad = np.asarray(waypoints_rad, dtype=np.float64)
    phase = np.linspace(0.0, len(waypoints_rad) - 1, num_frames)
    segment = np.minimum(phase.astype(int), len(waypoints_rad) - 2)
    blend = minimum_jerk(phase - segment)[:, None]
    return waypoints_rad[segment] * (1.0 - blend) + waypoints_rad[segment + 1] * blend


class SequenceRenderer:
    """Renders sequences of one robot at one image size (owns a MuJoCo GL context)."""

    def __init__(self, robot, height: int = SAMPLE_HEIGHT, width: int = SAMPLE_WIDTH):
        self.robot = robot
        self.height, self.width = int(height), int(width)
        limits = robot.joint_limits.detach().cpu().double().numpy()
        self.limit_lower, self.limit_upper = limits[:, 0].copy(), limits[:, 1].copy()
        # Waypoints are placed within the URDF's <limit> ranges, where a robot YAML's
        # joint_limits may be tighter: the committed sample bag was made so and stays
        # reproducible (its waypoints, the middle 45 %, lie inside Franka's limits too; any
        # that would not are clipped into the robot's limits).
        urdf = getattr(robot.description, 'urdf', None)
        for index, name in enumerate(robot.joint_names):
            joint = urdf.joint_map.get(name) if urdf is not None else None
            if joint is not None and joint.limit is not None and joint.type != 'continuous' \
                    and joint.limit.lower is not None and joint.limit.upper is not None:
                limits[index] = (joint.limit.lower, joint.limit.upper)
        self.joint_lower, self.joint_upper = limits[:, 0], limits[:, 1]
        self.renderer = MujocoRobotRenderer(robot, self.height, self.width, max_distractors=0,
                                            max_lights=2, render_depth=False)

    def _forward_kinematics(self, joint_angles: np.ndarray):
        """(link poses for the renderer, (F, K, 3) keypoints in the base frame), float64."""
        q = torch.as_tensor(joint_angles, dtype=torch.float64)
        with torch.no_grad():
            poses = self.robot.link_poses(q, sorted(set(self.renderer.robot_geom_links)))
            keypoints = self.robot.keypoints(q)
        link_poses = [{name: pose[i].double().numpy() for name, pose in poses.items()}
                      for i in range(len(q))]
        return link_poses, keypoints.double().numpy()

    def _fits(self, keypoints_base: np.ndarray, T_cam_base: np.ndarray, K: np.ndarray) -> bool:
        """Every keypoint of every frame inside the image (with margin), and every one off the
        base link above the floor."""
        lifted = self.robot.keypoints_off_base
        if (keypoints_base[:, lifted, 2] < _MIN_KEYPOINT_HEIGHT_M).any():
            return False
        points_cam = keypoints_base @ T_cam_base[:3, :3].T + T_cam_base[:3, 3]
        flat = points_cam.reshape(-1, 3)
        with np.errstate(divide='ignore', invalid='ignore'):
            pixels = project(flat, K)
        margin = _IMAGE_MARGIN_PX
        inside = in_image(flat, pixels - margin, self.height - 2 * margin,
                          self.width - 2 * margin)
        return bool(inside.all())

    def _sample(self, rng: np.random.Generator, num_frames: int, K: np.ndarray):
        """A trajectory and a camera that sees all of it; the last try if none does."""
        middle = (self.joint_lower + self.joint_upper) / 2.0
        half_range = (self.joint_upper - self.joint_lower) / 2.0 * _JOINT_RANGE_USED
        for _ in range(_MAX_TRIES):
            waypoints = np.clip(
                middle + half_range * rng.uniform(-1.0, 1.0, (_WAYPOINTS, len(middle))),
                self.limit_lower, self.limit_upper)
            joint_angles = joint_trajectory(waypoints, num_frames)
            link_poses, keypoints_base = self._forward_kinematics(joint_angles)
            # A tripod in front of the robot (+x), a little above, looking at its upper arm.
            azimuth = np.deg2rad(rng.uniform(-60.0, 60.0))
            elevation = np.deg2rad(rng.uniform(10.0, 30.0))
            distance = rng.uniform(1.5, 1.9)
            target = np.array([0.15, 0.0, rng.uniform(0.35, 0.5)])
            position = target + distance * np.array([np.cos(elevation) * np.cos(azimuth),
                                                     np.cos(elevation) * np.sin(azimuth),
                                                     np.sin(elevation)])
            T_base_cam = look_at(position, target, roll_rad=np.deg2rad(rng.uniform(-3.0, 3.0)))
            T_cam_base = np.linalg.inv(T_base_cam)
            if self._fits(keypoints_base, T_cam_base, K):
                break
        return joint_angles, link_poses, T_base_cam, T_cam_base

    def render(self, seed: int = SAMPLE_SEED, num_frames: int = SAMPLE_NUM_FRAMES,
               intrinsics_px=SAMPLE_INTRINSICS_PX, rate_hz: float = SAMPLE_RATE_HZ,
               start_ns: int = SAMPLE_START_NS,
               camera_bump: tuple[int, np.ndarray] | None = None) -> list[SequenceFrame]:
        """The sequence of ``seed``: ``num_frames`` frames at ``rate_hz``, stamps from start_ns.

        ``camera_bump`` (frame index, T (4, 4)): from that frame on, the tripod was knocked: the
        camera's pose is its pose before composed with T (the new pose in the old camera frame),
        the rest of the scene unchanged (tests of calibration's camera-motion check).
        """
        if num_frames < 2:
            raise ValueError(f'a sequence needs at least 2 frames, got {num_frames}')
        rng = np.random.default_rng(int(seed))
        fx, fy, cx, cy = (float(v) for v in intrinsics_px)
        K = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
        joint_angles, link_poses, T_base_cam, T_cam_base = self._sample(rng, num_frames, K)
        # A light-grey arm (the real Panda is white) under two soft lights, a cluttered wall.
        grey = rng.uniform(0.75, 0.9)
        robot_rgba = np.tile([grey, grey, grey, 1.0], (self.renderer.num_robot_geoms, 1))
        lights = [Light(pos_m=np.array(position), direction=np.array([0.0, 0.0, 0.4]) - position,
                        diffuse=np.full(3, diffuse), ambient=np.full(3, 0.15),
                        specular=np.full(3, 0.2), directional=False)
                  for position, diffuse in (((1.5, 1.0, 2.5), 0.7), ((1.0, -1.5, 2.0), 0.4))]
        background = shapes_background(rng, self.height, self.width, count_range=(8, 16),
                                       value_range=(0.2, 0.7))
        period_ns = int(round(1e9 / rate_hz))
        frames = []
        for index in range(num_frames):
            if camera_bump is not None and index == int(camera_bump[0]):
                T_base_cam = T_base_cam @ np.asarray(camera_bump[1], dtype=np.float64)
                T_cam_base = np.linalg.inv(T_base_cam)
            state = SceneState(link_poses=link_poses[index], T_base_cam=T_base_cam, K=K,
                               robot_rgba=robot_rgba, robot_specular=np.full(len(robot_rgba), 0.3),
                               robot_shininess=np.full(len(robot_rgba), 0.4), lights=lights,
                               headlight_ambient=0.25)
            rendered = self.renderer.render(state)
            rgb = np.where(rendered.drawn_mask[..., None], rendered.rgb, background)
            frames.append(SequenceFrame(rgb=np.ascontiguousarray(rgb),
                                        joint_angles_rad=joint_angles[index].copy(),
                                        T_cam_base=T_cam_base.copy(), K=K.copy(),
                                        stamp_ns=int(start_ns) + index * period_ns))
        return frames

    def close(self) -> None:
        """Release the renderer's GL context."""
        self.renderer.close()
