"""Estimator fakes for the recording-calibration tests (``--estimator-factory`` targets).

``make_hand_camera_estimator``: a camera on the Panda's hand at ``T_CAM_EE``; every estimate is
the camera<->base transform that the measured joints it is given imply (plus a little noise), so an
eye-in-hand calibration must recover ``T_CAM_EE``.
"""
from __future__ import annotations

import functools

import numpy as np
from scipy.spatial.transform import Rotation

from robotag_ros.harness.fake_estimator import FakeEstimator

T_CAM_EE = np.eye(4)
T_CAM_EE[:3, :3] = Rotation.from_euler('xyz', [0.0, 0.0, 90.0], degrees=True).as_matrix()
T_CAM_EE[:3, 3] = [0.0, -0.05, 0.04]


@functools.cache
def _panda():
    from robotag_ros.robot import load_robot
    return load_robot('panda')


class HandCameraEstimator(FakeEstimator):
    """The fake estimator, but with the camera on the hand: T_cam_base follows the joints."""

    def __init__(self):
        super().__init__(joint_names=_panda().joint_names)
        self.robot = _panda()
        self._rng = np.random.default_rng(0)

    def estimate(self, image_rgb, K, box=None, joint_angles_rad=None):
        from robotag_ros.calibration import robot_forward_kinematics

        estimate = super().estimate(image_rgb, K, box, joint_angles_rad)
        T_base_ee = robot_forward_kinematics(self.robot, 'panda_hand')(
            np.asarray(joint_angles_rad)[None])[0]
        noise = np.eye(4)
        noise[:3, :3] = Rotation.from_rotvec(self._rng.normal(0, 1e-3, 3)).as_matrix()
        noise[:3, 3] = self._rng.normal(0, 1e-3, 3)
        estimate.T_cam_base = noise @ T_CAM_EE @ np.linalg.inv(T_base_ee)
        return estimate


def make_hand_camera_estimator(model_path='', backend='torch', device='cpu'):
    """Factory with load_estimator's signature (the model is ignored)."""
    return HandCameraEstimator()
