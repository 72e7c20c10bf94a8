"""One domain-randomised synthetic frame: sample a scene, render it, composite, label it.

Everything random in a frame comes from one numpy Generator seeded by (seed, frame index), so a
frame does not depend on which worker or shard made it, nor on the frames made before it.
"""
from __future__ import annotations

import colorsys
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from scipy.spatial.transform import Rotation

from robotag_ros.data.synthetic.backgrounds import random_background
from robotag_ros.data.synthetic.camera_sampling import (in_image, project, sample_camera_pose,
                                                        sample_intrinsics)
from robotag_ros.data.synthetic.dr_config import DRConfig
from robotag_ros.data.image_aug import augment_photometric
from robotag_ros.data.synthetic.renderer import (DISTRACTOR_SHAPES, Distractor, Light,
                                                 MujocoRobotRenderer, SceneState)
from robotag_ros.data.synthetic.room import (MAX_SCENERY_BOXES, RoomLayout, rooms_enabled,
                                             sample_layout, sample_scenery)


@dataclass
class SynthFrame:
    """A labelled synthetic frame.

    rgb (H, W, 3) uint8; robot_mask (H, W) bool; depth_m (H, W) float32 metres (0 = background) or
    None; joint_angles_rad (n,); T_cam_base (4, 4) metres; K (3, 3) pixels; keypoints_3d_m (K, 3)
    camera frame; keypoints_2d_px (K, 2); T_base_cam for the NDDS camera_data block.
    """

    rgb: np.ndarray
    robot_mask: np.ndarray
    depth_m: np.ndarray | None
    joint_angles_rad: np.ndarray
    T_cam_base: np.ndarray
    T_base_cam: np.ndarray
    K: np.ndarray
    keypoints_3d_m: np.ndarray
    keypoints_2d_px: np.ndarray


def frame_rng(seed: int, frame_index: int, stream: int = 0) -> np.random.Generator:
    """The Generator of one frame: independent of workers, shards and other frames. Stream 1
    draws the room, so that a config without rooms makes the same frames as before rooms."""
    key = [int(seed), int(frame_index)] + ([int(stream)] if stream else [])
    return np.random.default_rng(np.random.SeedSequence(key))


def _random_rgb(rng, value_range, saturation_range) -> np.ndarray:
    hue = rng.uniform()
    return np.array(colorsys.hsv_to_rgb(hue, rng.uniform(*saturation_range),
                                        rng.uniform(*value_range)))


def _random_pose(rng, position_m: np.ndarray) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = Rotation.random(random_state=rng).as_matrix()
    T[:3, 3] = position_m
    return T


class SyntheticFrameGenerator:
    """Makes labelled frames of one robot with one DR config at one image size."""

    def __init__(self, robot, config: DRConfig, height: int, width: int,
                 cache_dir=None, K: np.ndarray | None = None):
        """``K`` (3, 3) pixels: every frame uses it (a DREAM folder has one K); None draws a K per
        frame from ``config.camera``."""
        self.robot, self.config = robot, config
        self.height, self.width = int(height), int(width)
        self.K = None if K is None else np.asarray(K, dtype=np.float64).reshape(3, 3)
        # The description's limits (float64, as the YAML or URDF gives them), not the model's
        # float32 copy: a sample never lies past a limit, not even by a rounding.
        limits = np.array([[joint.lower, joint.upper] for joint in robot.description.joints])
        self.joint_lower, self.joint_upper = limits[:, 0], limits[:, 1]
        self.rooms = rooms_enabled(config.room)
        self.renderer = MujocoRobotRenderer(
            robot, self.height, self.width,
            max_distractors=int(config.distractors.count[1]),
            max_lights=int(config.lights.count[1]), cache_dir=cache_dir,
            render_depth=config.save_depth,
            max_scenery=MAX_SCENERY_BOXES if self.rooms else 0)

    def _forward_kinematics(self, joint_angles: np.ndarray):
        # float64 FK: labels carry no float32 rounding, and pixels are drawn from the same poses.
        q = torch.as_tensor(joint_angles, dtype=torch.float64)[None]
        with torch.no_grad():
            poses = self.robot.link_poses(q, sorted(set(self.renderer.robot_geom_links)))
            keypoints = self.robot.keypoints(q)
        link_poses = {name: pose[0].double().cpu().numpy() for name, pose in poses.items()}
        return link_poses, keypoints[0].double().cpu().numpy()

    def _sample_camera(self, rng, keypoints_base, layout: RoomLayout):
        """(K, T_base_cam, number of keypoints in the image) of the best of max_resample tries;
        a camera the room forbids (under the floor, inside the table) counts as seeing none."""
        cam = self.config.camera
        best = None
        for _ in range(max(1, cam.max_resample)):
            K = self.K if self.K is not None else sample_intrinsics(rng, self.height,
                                                                    self.width, cam)
            T_base_cam = sample_camera_pose(rng, keypoints_base, cam)
            if not layout.camera_allowed(T_base_cam[:3, 3], self.config.room.camera_clearance_m):
                continue
            T_cam_base = np.linalg.inv(T_base_cam)
            keypoints_cam = keypoints_base @ T_cam_base[:3, :3].T + T_cam_base[:3, 3]
            with np.errstate(divide='ignore', invalid='ignore'):
                keypoints_2d = project(keypoints_cam, K)
            visible = int(in_image(keypoints_cam, keypoints_2d, self.height, self.width).sum())
            if best is None or visible > best[2]:
                best = (K, T_base_cam, visible)
            if visible >= cam.min_keypoints_in_image:
                break
        return best

    def _sample_joints(self, rng, layout: RoomLayout):
        """Joint angles (and their FK); with a room, an arm that stays above its support."""
        tries = 20 if layout.has_room else 1
        for _ in range(tries):
            joint_angles = rng.uniform(self.joint_lower, self.joint_upper)
            link_poses, keypoints_base = self._forward_kinematics(joint_angles)
            lowest = keypoints_base[self.robot.keypoints_off_base, 2].min()
            if not layout.has_room or lowest >= self.config.room.min_keypoint_height_m:
                break
        return joint_angles, link_poses, keypoints_base

    def _sample_robot_and_camera(self, rng, layout: RoomLayout):
        """Joint angles and a camera that sees enough keypoints; new joints if no camera does."""
        best = None
        for _ in range(max(1, self.config.camera.max_joint_resample)):
            joint_angles, link_poses, keypoints_base = self._sample_joints(rng, layout)
            sampled = self._sample_camera(rng, keypoints_base, layout)
            if sampled is None:
                continue
            K, T_base_cam, visible = sampled
            if best is None or visible > best[-1]:
                best = (joint_angles, link_poses, keypoints_base, K, T_base_cam, visible)
            if visible >= self.config.camera.min_keypoints_in_image:
                break
        if best is None:  # no camera the room allows: the same draw without the room
            return self._sample_robot_and_camera(rng, RoomLayout('none'))
        return best[:-1]

    def _sample_lights(self, rng, layout: RoomLayout):
        cfg = self.config.lights
        lights = []
        for index in range(int(rng.integers(cfg.count[0], cfg.count[1] + 1))):
            azimuth, elevation = rng.uniform(0, 2 * np.pi), rng.uniform(0.1, 1.4)
            key = index == 0 and layout.has_room
            if key and cfg.key_elevation_deg is not None:  # from above, as rooms are lit
                elevation = np.deg2rad(rng.uniform(*cfg.key_elevation_deg))
            distance = rng.uniform(*cfg.distance_m)
            pos = distance * np.array([np.cos(elevation) * np.cos(azimuth),
                                       np.cos(elevation) * np.sin(azimuth), np.sin(elevation)])
            target = rng.uniform(-0.3, 0.3, size=3) + np.array([0.0, 0.0, 0.4])
            tint = 1.0 + rng.uniform(-cfg.colour_tint, cfg.colour_tint, size=3)
            lights.append(Light(pos_m=pos, direction=target - pos,
                                diffuse=np.clip(rng.uniform(*cfg.diffuse) * tint, 0, 1),
                                ambient=np.full(3, rng.uniform(*cfg.ambient) / 2.0),
                                specular=np.full(3, rng.uniform(*cfg.specular)),
                                directional=bool(rng.uniform() < 0.5),
                                cast_shadow=key and cfg.shadows))
        return lights

    def _sample_robot_colours(self, rng):
        """Per-geom rgba, specular and shininess: random per link (or one colour), or, in
        ``own_prob`` of the frames, the robot's own material colours, jittered."""
        cfg = self.config.colours
        renderer = self.renderer
        if cfg.own_prob > 0 and rng.uniform() < cfg.own_prob:
            jitter = rng.uniform(-cfg.own_jitter, cfg.own_jitter, size=3)
            rgba = renderer.own_rgba.copy()
            rgba[:, :3] = np.clip(rgba[:, :3] * (1.0 + jitter), 0.0, 1.0)
            count = renderer.num_robot_geoms
            return (rgba, np.full(count, rng.uniform(*cfg.specular)),
                    np.full(count, rng.uniform(*cfg.shininess)))
        count = renderer.num_robot_links
        mode = cfg.robot_mode if cfg.robot_mode != 'mixed' else (
            'uniform' if rng.uniform() < 0.5 else 'per_link')
        if mode == 'uniform':
            colours = np.tile(_random_rgb(rng, cfg.robot_value, cfg.robot_saturation), (count, 1))
        elif mode == 'per_link':
            colours = np.stack([_random_rgb(rng, cfg.robot_value, cfg.robot_saturation)
                                for _ in range(count)])
        else:
            raise ValueError(f'colours.robot_mode: unknown {cfg.robot_mode!r} '
                             "(known: 'uniform', 'per_link', 'mixed')")
        rgba = renderer.link_colours_to_geoms(np.concatenate([colours, np.ones((count, 1))], 1))
        specular = np.full(len(rgba), rng.uniform(*cfg.specular))
        shininess = np.full(len(rgba), rng.uniform(*cfg.shininess))
        return rgba, specular, shininess

    def _sample_distractors(self, rng, T_base_cam, keypoints_base, layout: RoomLayout):
        cfg = self.config.distractors
        distractors = []
        camera_pos = T_base_cam[:3, 3]
        for _ in range(int(rng.integers(cfg.count[0], cfg.count[1] + 1))):
            shape = DISTRACTOR_SHAPES[int(rng.integers(0, len(DISTRACTOR_SHAPES)))]
            half_size = rng.uniform(*cfg.size_m, size=3)
            if rng.uniform() < cfg.occluder_prob:
                half_size *= cfg.occluder_size_scale
                # Between the camera and a keypoint, so that it partly hides the robot.
                target = keypoints_base[int(rng.integers(0, len(keypoints_base)))]
                position = camera_pos + rng.uniform(0.5, 0.85) * (target - camera_pos)
                position += rng.uniform(-0.05, 0.05, size=3)
            else:
                position = rng.uniform(-cfg.region_m, cfg.region_m, size=3)
                position[2] = abs(position[2])
                if layout.has_room:  # clutter rests on the table or the floor
                    position[2] = layout.surface_z_at(position[:2]) + half_size[2]
            colour = _random_rgb(rng, (0.1, 1.0), (0.0, 1.0))
            distractors.append(Distractor(shape=shape, half_size_m=half_size,
                                          T_base_object=_random_pose(rng, position),
                                          rgba=np.append(colour, 1.0)))
        return distractors

    def generate(self, seed: int, frame_index: int) -> SynthFrame:
        """Render frame `frame_index` of the set made with `seed`."""
        rng = frame_rng(seed, frame_index)
        room_rng = frame_rng(seed, frame_index, stream=1) if self.rooms else None
        layout = sample_layout(room_rng, self.config.room) if self.rooms else RoomLayout('none')
        joint_angles, link_poses, keypoints_base, K, T_base_cam = \
            self._sample_robot_and_camera(rng, layout)
        T_cam_base = np.linalg.inv(T_base_cam)
        robot_rgba, specular, shininess = self._sample_robot_colours(rng)
        state = SceneState(
            link_poses=link_poses, T_base_cam=T_base_cam, K=K, robot_rgba=robot_rgba,
            robot_specular=specular, robot_shininess=shininess,
            distractors=self._sample_distractors(rng, T_base_cam, keypoints_base, layout),
            lights=self._sample_lights(rng, layout),
            headlight_ambient=float(rng.uniform(*self.config.lights.ambient)),
            scenery=(sample_scenery(room_rng, self.config.room, layout, T_base_cam[:3, 3])
                     if self.rooms else []))
        rendered = self.renderer.render(state)
        background = random_background(rng, self.height, self.width, self.config.background)
        rgb = np.where(rendered.drawn_mask[..., None], rendered.rgb, background)
        rgb = augment_photometric(rgb, rng, self.config.image)
        keypoints_cam = keypoints_base @ T_cam_base[:3, :3].T + T_cam_base[:3, 3]
        with np.errstate(divide='ignore', invalid='ignore'):
            keypoints_2d = project(keypoints_cam, K)
        return SynthFrame(rgb=np.ascontiguousarray(rgb), robot_mask=rendered.robot_mask,
                          depth_m=rendered.depth_m, joint_angles_rad=joint_angles,
                          T_cam_base=T_cam_base, T_base_cam=T_base_cam, K=K,
                          keypoints_3d_m=keypoints_cam, keypoints_2d_px=keypoints_2d)

    def _sequence_camera(self, rng, keypoints_base: np.ndarray, layout: RoomLayout):
        """(K, T_base_cam) seeing the most keypoints in the sequence's worst frame
        (keypoints_base (F, K, 3)), of up to max_resample tries; None if it sees fewer than
        min_keypoints_in_image there."""
        cam = self.config.camera
        best = None
        for _ in range(max(1, cam.max_resample)):
            K = self.K if self.K is not None else sample_intrinsics(rng, self.height,
                                                                    self.width, cam)
            T_base_cam = sample_camera_pose(rng, keypoints_base.reshape(-1, 3), cam)
            if not layout.camera_allowed(T_base_cam[:3, 3], self.config.room.camera_clearance_m):
                continue
            T_cam_base = np.linalg.inv(T_base_cam)
            keypoints_cam = keypoints_base @ T_cam_base[:3, :3].T + T_cam_base[:3, 3]
            with np.errstate(divide='ignore', invalid='ignore'):
                keypoints_2d = project(keypoints_cam.reshape(-1, 3), K)
            visible = in_image(keypoints_cam.reshape(-1, 3), keypoints_2d, self.height,
                               self.width).reshape(keypoints_base.shape[:2]).sum(axis=1).min()
            if best is None or visible > best[2]:
                best = (K, T_base_cam, int(visible))
        return best[:2] if best is not None and best[2] >= cam.min_keypoints_in_image else None

    def generate_sequence(self, seed: int, num_frames: int, waypoints: int = 4,
                          joint_range_used: float = 0.6,
                          scene_seed: int | None = None) -> list[SynthFrame]:
        """A static-camera recording in this config's look: one camera (pose and K) and one
        scene (robot colours, lights, distractors, background, photometric effects) drawn from
        ``seed``, the arm moving smoothly through ``waypoints`` random configurations within the
        middle ``joint_range_used`` of each joint's range (sample_sequence.joint_trajectory);
        with rooms, one room, the arm staying above its support all along.

        ``scene_seed`` draws the scene (and room) from another seed than the camera and the
        motion: two recordings with one ``scene_seed`` are one robot cell seen by two cameras."""
        from robotag_ros.data.synthetic.sample_sequence import joint_trajectory

        rng = frame_rng(seed, 0)
        # Stream 2 keeps a shared scene's draws apart from the camera seed's own stream 0.
        scene_rng = rng if scene_seed is None else frame_rng(scene_seed, 0, stream=2)
        room_seed = seed if scene_seed is None else scene_seed
        room_rng = frame_rng(room_seed, 0, stream=1) if self.rooms else None
        layout = sample_layout(room_rng, self.config.room) if self.rooms else RoomLayout('none')
        middle = (self.joint_lower + self.joint_upper) / 2.0
        half_range = (self.joint_upper - self.joint_lower) / 2.0 * joint_range_used
        camera = None
        for _ in range(max(1, self.config.camera.max_joint_resample) * 4):
            joint_angles = joint_trajectory(
                middle + half_range * rng.uniform(-1.0, 1.0, (waypoints, len(middle))),
                num_frames)
            posed = [self._forward_kinematics(q) for q in joint_angles]
            keypoints_base = np.stack([keypoints for _, keypoints in posed])
            if layout.has_room and keypoints_base[:, self.robot.keypoints_off_base, 2].min() \
                    < self.config.room.min_keypoint_height_m:
                continue
            camera = self._sequence_camera(rng, keypoints_base, layout)
            if camera is not None:
                break
        if camera is None:
            raise RuntimeError(f'seed {seed}: no camera of this config sees the whole motion')
        K, T_base_cam = camera
        T_cam_base = np.linalg.inv(T_base_cam)
        robot_rgba, specular, shininess = self._sample_robot_colours(scene_rng)
        distractors = self._sample_distractors(scene_rng, T_base_cam, keypoints_base[0], layout)
        lights = self._sample_lights(scene_rng, layout)
        headlight = float(scene_rng.uniform(*self.config.lights.ambient))
        background = random_background(scene_rng, self.height, self.width,
                                       self.config.background)
        photometric_seed = int(scene_rng.integers(2 ** 31))
        scenery = sample_scenery(room_rng, self.config.room, layout, T_base_cam[:3, 3]) \
            if self.rooms else []
        frames = []
        for q, (link_poses, keypoints) in zip(joint_angles, posed):
            rendered = self.renderer.render(SceneState(
                link_poses=link_poses, T_base_cam=T_base_cam, K=K, robot_rgba=robot_rgba,
                robot_specular=specular, robot_shininess=shininess, distractors=distractors,
                lights=lights, headlight_ambient=headlight, scenery=scenery))
            rgb = np.where(rendered.drawn_mask[..., None], rendered.rgb, background)
            # one camera: the same blur, hue and noise draw for every frame
            rgb = augment_photometric(rgb, np.random.default_rng(photometric_seed),
                                      self.config.image)
            keypoints_cam = keypoints @ T_cam_base[:3, :3].T + T_cam_base[:3, 3]
            frames.append(SynthFrame(
                rgb=np.ascontiguousarray(rgb), robot_mask=rendered.robot_mask,
                depth_m=rendered.depth_m, joint_angles_rad=q.copy(),
                T_cam_base=T_cam_base.copy(), T_base_cam=T_base_cam.copy(), K=K.copy(),
                keypoints_3d_m=keypoints_cam, keypoints_2d_px=project(keypoints_cam, K)))
        return frames

    def close(self) -> None:
        """Release the renderer's GL context."""
        self.renderer.close()


def encode_jpeg(rgb: np.ndarray, quality: int) -> bytes:
    """RGB uint8 -> JPEG bytes (OpenCV's libjpeg: deterministic for the same pixels)."""
    ok, data = cv2.imencode('.jpg', rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError('JPEG encoding failed')
    return data.tobytes()
