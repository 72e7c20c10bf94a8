"""A deterministic stand-in for the real estimator, for tests and benchmarks of the ROS plumbing.

ROS-free. Select it in the node with the parameter
``estimator_factory: robotag_ros.harness.fake_estimator:make_fake_estimator``.
It returns the same known Estimate for every frame (so a test can compare what the node publishes
with it), except on frames whose top-left pixel carries a trigger colour:
``RAISE_PIXEL_RGB`` makes ``estimate`` raise, ``NAN_PIXEL_RGB`` makes it return NaN joint angles.
``delay_ms`` (or the env var ROBOTAG_FAKE_DELAY_MS) simulates inference time.
"""
from __future__ import annotations

import os
import time

import numpy as np
from scipy.spatial.transform import Rotation

from robotag_ros.inference.estimate import Estimate

RAISE_PIXEL_RGB = (255, 0, 255)
NAN_PIXEL_RGB = (0, 255, 255)

PANDA_JOINT_NAMES = [f'panda_joint{i}' for i in range(1, 8)]
PANDA_KEYPOINT_NAMES = ['panda_link0', 'panda_link2', 'panda_link3', 'panda_link4',
                        'panda_link6', 'panda_link7', 'panda_hand']
# A reachable Panda configuration (radians) and a camera 1.5 m in front of the robot.
FAKE_JOINT_ANGLES_RAD = np.array([0.1, -0.4, 0.05, -2.0, 0.02, 1.7, 0.8])
FAKE_T_CAM_BASE = np.eye(4)
FAKE_T_CAM_BASE[:3, :3] = Rotation.from_euler('xyz', [-100.0, 0.0, 90.0], degrees=True).as_matrix()
FAKE_T_CAM_BASE[:3, 3] = [0.05, 0.3, 1.5]
# Keypoints in the base frame (metres): a rough arm-shaped chain, not the Panda's kinematics.
FAKE_KEYPOINTS_BASE_M = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.33], [0.05, 0.0, 0.6],
                                  [0.15, 0.0, 0.65], [0.35, 0.0, 0.6], [0.45, 0.0, 0.5],
                                  [0.5, 0.0, 0.4]])


class FakeEstimator:
    """Returns the fixed Estimate above, projected with the K of each call."""

    def __init__(self, joint_names=None, delay_ms: float = 0.0):
        self.joint_names = list(joint_names or PANDA_JOINT_NAMES)
        self.robot_name = 'panda'
        self.base_frame = 'panda_link0'
        self.input_hw = (96, 96)   # a network input size, which the node checks images against
        self.backend_name = 'fake'
        self.delay_ms = float(delay_ms)
        self.calls = 0

    def next_box(self, estimate: Estimate) -> None:
        """No tracking: every frame is looked at whole."""
        return None

    def estimate(self, image_rgb: np.ndarray, K: np.ndarray, box=None,
                 joint_angles_rad: np.ndarray | None = None,
                 T_cam_base: np.ndarray | None = None) -> Estimate:
        """Estimate for one HxWx3 uint8 RGB image with intrinsics K (pixels); measured
        ``joint_angles_rad`` and a known camera ``T_cam_base`` are reported as given."""
        start = time.perf_counter()
        self.calls += 1
        top_left = tuple(int(c) for c in image_rgb[0, 0, :3])
        if top_left == RAISE_PIXEL_RGB:
            raise RuntimeError('fake estimator: raise requested by the frame\'s trigger pixel')
        if self.delay_ms > 0:
            time.sleep(self.delay_ms / 1000.0)
        joint_angles = (FAKE_JOINT_ANGLES_RAD[:len(self.joint_names)] if joint_angles_rad is None
                        else np.asarray(joint_angles_rad, dtype=np.float64)).copy()
        if top_left == NAN_PIXEL_RGB:
            joint_angles[:] = np.nan
        camera = FAKE_T_CAM_BASE if T_cam_base is None else np.asarray(T_cam_base, np.float64)
        keypoints_cam = FAKE_KEYPOINTS_BASE_M @ camera[:3, :3].T + camera[:3, 3]
        projected = keypoints_cam @ np.asarray(K, dtype=np.float64).T
        keypoints_2d = projected[:, :2] / projected[:, 2:3]
        return Estimate(
            joint_names=list(self.joint_names), joint_angles_rad=joint_angles,
            T_cam_base=camera.copy(), keypoint_names=list(PANDA_KEYPOINT_NAMES),
            keypoints_2d_px=keypoints_2d, keypoints_3d_m=keypoints_cam, consistency=0.9,
            consistency_terms={'reprojection_px': 1.5},
            points_3d_m=keypoints_cam.copy(),
            timings_ms={'total_ms': (time.perf_counter() - start) * 1000.0})


def make_fake_estimator(model_path: str = '', backend: str = 'torch', device: str = 'cpu',
                        robot: str = 'panda') -> FakeEstimator:
    """Factory with the signature of ``robotag_ros.estimator_factory.load_estimator`` (model
    ignored)."""
    if robot not in ('', 'panda'):
        raise ValueError(f'fake estimator only knows the Panda, not {robot!r}')
    return FakeEstimator(delay_ms=float(os.environ.get('ROBOTAG_FAKE_DELAY_MS', '0')))
