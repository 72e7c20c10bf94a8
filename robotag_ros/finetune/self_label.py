"""Label a user's own recording by forward kinematics and the calibrated camera; keep what agrees.

Once the camera is calibrated, the robot's measured joints label every frame exactly: the camera
pose (eye-on-base: the calibration itself; eye-in-hand: the calibration composed with the hand's
forward kinematics), the keypoints in 3D (camera frame, metres) and their projections (pixels).
A frame whose labels are wrong (the camera moved, a joint state matched to the wrong image) shows
it: its projected keypoints lie far from the keypoints the network detects. The disagreement of
each frame (median keypoint distance, pixels) is judged robustly against the others; frames
beyond ``median + k * 1.4826 * MAD`` are dropped. The kept frames are written as a DREAM-format
set (data/dream/writer.py), which the training code reads like any labelled set.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import torch

from robotag_ros.calibration.aggregate import _robust_keep
from robotag_ros.calibration.calib_file import HandEyeCalibration
from robotag_ros.calibration.hand_eye import EYE_IN_HAND, robot_forward_kinematics
from robotag_ros.data.bags.bag_images import iter_bag_images
from robotag_ros.data.dream.writer import write_frame, write_set_files
from robotag_ros.geometry.camera import project_points
from robotag_ros.geometry.transforms import transform_points


@dataclass
class FrameLabels:
    """Labels of N frames (in the order given): T_cam_base (N, 4, 4) metres, keypoints_3d_m
    (N, K, 3) camera frame, keypoints_2d_px (N, K, 2) source pixels."""

    joint_angles_rad: np.ndarray
    T_cam_base: np.ndarray
    keypoints_3d_m: np.ndarray
    keypoints_2d_px: np.ndarray

    def select(self, index) -> 'FrameLabels':
        """The labels of the frames ``index`` (indices or a bool mask), in that order."""
        return FrameLabels(self.joint_angles_rad[index], self.T_cam_base[index],
                           self.keypoints_3d_m[index], self.keypoints_2d_px[index])


def label_frames(robot, calibration: HandEyeCalibration, joint_angles_rad: np.ndarray,
                 intrinsics: np.ndarray) -> FrameLabels:
    """Labels from the measured joints (N, n) radians, each frame's K (N, 3, 3) and the
    calibration (eye-on-base: ``T_cam_base`` for every frame; eye-in-hand: ``T_cam_ee`` composed
    with the inverse of the effector's forward kinematics)."""
    joint_angles_rad = np.asarray(joint_angles_rad, dtype=np.float64)
    count = len(joint_angles_rad)
    T_cam_reference = np.asarray(calibration.T_cam_reference, dtype=np.float64)
    if calibration.calibration_type == EYE_IN_HAND:
        T_base_ee = robot_forward_kinematics(robot, calibration.robot_effector_frame)(
            joint_angles_rad)
        T_cam_base = T_cam_reference @ np.linalg.inv(T_base_ee)
    else:
        T_cam_base = np.broadcast_to(T_cam_reference, (count, 4, 4)).copy()
    with torch.no_grad():
        keypoints_base = robot.keypoints(torch.as_tensor(joint_angles_rad, dtype=torch.float32))
        keypoints_cam = transform_points(torch.as_tensor(T_cam_base, dtype=torch.float64),
                                         keypoints_base.double())
        keypoints_2d = project_points(keypoints_cam, torch.as_tensor(
            np.asarray(intrinsics, dtype=np.float64)))
    return FrameLabels(joint_angles_rad, T_cam_base, keypoints_cam.numpy(), keypoints_2d.numpy())


def label_disagreement_px(keypoints_2d_px: np.ndarray, estimates) -> np.ndarray:
    """(N,) per frame: the median distance (pixels) between the labelled keypoints (N, K, 2)
    and the ones the network detected (its heatmap peaks, before any fit; the reported ones
    without them)."""
    distances = []
    for projected, estimate in zip(keypoints_2d_px, estimates):
        detected = estimate.keypoints_2d_detected_px
        detected = estimate.keypoints_2d_px if detected is None else detected
        distances.append(float(np.median(np.linalg.norm(projected - detected, axis=1))))
    return np.asarray(distances)


def agreeing_frames(disagreement_px: np.ndarray, mad_k: float = 3.0,
                    floor_px: float = 2.0) -> np.ndarray:
    """(N,) bool: the frames whose disagreement is within ``median + mad_k * sigma`` (sigma from
    the MAD, never below ``floor_px``), i.e. not far worse than the recording's typical frame."""
    disagreement_px = np.asarray(disagreement_px, dtype=np.float64)
    return np.isfinite(disagreement_px) & _robust_keep(
        np.nan_to_num(disagreement_px, nan=np.inf), mad_k, floor_px)


class RobotMasks:
    """The robot's silhouette as a labelled frame's camera sees it: its visual meshes posed by
    forward kinematics, rendered (MuJoCo) with the calibrated camera and the frame's K. One
    renderer per image size; ``close`` releases its GL context."""

    def __init__(self, robot):
        self.robot, self._renderer, self._hw = robot, None, None

    def __call__(self, joint_angles_rad: np.ndarray, T_cam_base: np.ndarray, K: np.ndarray,
                 height: int, width: int) -> np.ndarray:
        from robotag_ros.data.synthetic.renderer import MujocoRobotRenderer, SceneState
        if self._hw != (height, width):
            self.close()
            self._renderer = MujocoRobotRenderer(self.robot, height, width, max_distractors=0,
                                                 max_lights=1, render_depth=False)
            self._hw = (height, width)
        q = torch.as_tensor(joint_angles_rad, dtype=torch.float64)[None]
        with torch.no_grad():
            poses = self.robot.link_poses(q, sorted(set(self._renderer.robot_geom_links)))
        state = SceneState(link_poses={name: pose[0].numpy() for name, pose in poses.items()},
                           T_base_cam=np.linalg.inv(T_cam_base), K=np.asarray(K))
        return self._renderer.render(state).robot_mask

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None


def write_labelled_set(out_dir: str | os.PathLike, robot, plan, stamps_ns: np.ndarray,
                       labels: FrameLabels, jpeg_quality: int = 95,
                       masks: RobotMasks | None = None) -> int:
    """Write the frames stamped ``stamps_ns`` of the recording (``plan``: a RecordingPlan) with
    their labels (same order) as a DREAM-format set in ``out_dir``; returns the frames written.
    Images are read from the bag again (one at a time, never all in memory). With ``masks``
    each frame also gets the robot's rendered silhouette (its ``_mask.png``)."""
    out_dir = Path(out_dir)
    by_stamp = {int(stamp): index for index, stamp in enumerate(stamps_ns)}
    written = 0
    for frame in iter_bag_images(plan.bag_path, plan.topics.image, plan.topics.camera_info):
        index = by_stamp.pop(int(frame.stamp_ns), None)
        if index is None:
            continue
        height, width = frame.image_rgb.shape[:2]
        if written == 0:
            write_set_files(out_dir, robot, frame.K, height, width)
        ok, jpeg = cv2.imencode('.jpg', frame.image_rgb[..., ::-1],
                                [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
        if not ok:
            raise RuntimeError(f'JPEG encoding failed for the frame at {frame.stamp_ns}')
        T_cam_base = labels.T_cam_base[index]
        robot_mask = None if masks is None else masks(
            labels.joint_angles_rad[index], T_cam_base, frame.K, height, width)
        write_frame(out_dir, written, robot, SimpleNamespace(
            rgb=frame.image_rgb, joint_angles_rad=labels.joint_angles_rad[index],
            T_cam_base=T_cam_base, T_base_cam=np.linalg.inv(T_cam_base), K=frame.K,
            keypoints_3d_m=labels.keypoints_3d_m[index],
            keypoints_2d_px=labels.keypoints_2d_px[index], robot_mask=robot_mask),
            jpeg.tobytes(), save_mask=robot_mask is not None, save_depth=False)
        written += 1
    return written
