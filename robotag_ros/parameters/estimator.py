"""The estimator node's parameters (robotag_ros/ros/estimator_node.py): the one schema that
declares them, fills config/estimator.yaml and the table in docs/node.md."""
from __future__ import annotations

from typing import Optional

import numpy as np

from robotag_ros.calibration.static_camera import StaticCameraSettings
from robotag_ros.geometry.camera import intrinsics_to_K, pinhole_problem
from robotag_ros.inference.backends import BACKEND_CHOICES
from robotag_ros.inference.factory import DEFAULT_FACTORY
from robotag_ros.parameters.schema import Parameter

TF_PARENTS = ('camera', 'base')
_STATIC = StaticCameraSettings()
RELIABILITIES = ('best_effort', 'reliable')


def device_problem(value: str) -> Optional[str]:
    if value in ('cpu', 'cuda') or (value.startswith('cuda:') and value[5:].isdigit()):
        return None
    return f"device must be 'cpu', 'cuda' or 'cuda:N', got {value!r}"


def factory_problem(value: str) -> Optional[str]:
    if value and value.count(':') != 1:
        return f"estimator_factory must be 'module:callable', got {value!r}"
    return None


def intrinsics_problem(values) -> Optional[str]:
    values = list(values)
    if len(values) != 4 or not np.isfinite(values).all():
        return f'intrinsics must be 4 finite numbers [fx, fy, cx, cy], got {values}'
    if not any(values):
        return None   # all zeros: wait for camera_info
    if values[0] <= 0 or values[1] <= 0:
        return f'intrinsics focal lengths must be positive, got {values}'
    problem = pinhole_problem(intrinsics_to_K(*values))
    return None if problem is None else f'intrinsics {values}: {problem[1]}'


ESTIMATOR_PARAMETERS = (
    Parameter('model_path', '', "Model artifact (weights + sidecar, path without suffix) loaded "
              "by the estimator factory; '' = the bundled models/panda_default (checkout "
              'first, then the installed share).', read_only=True),
    Parameter('backend', 'auto', 'Inference backend: auto (onnxruntime on cpu, torch on cuda), '
              'torch, onnxruntime or tensorrt.', read_only=True, choices=BACKEND_CHOICES),
    Parameter('device', 'cpu', "Inference device: 'cpu', 'cuda' or 'cuda:N'.", read_only=True,
              check=device_problem),
    Parameter('robot', '', "Robot the model estimates (bundled name or robot YAML); '' = the "
              "artifact's; a mismatch is refused at start.", read_only=True),
    Parameter('estimator_factory', '', "'package.module:callable' building the estimator from "
              '(model_path, backend, device[, robot]): a robotag_ros.inference.estimate.'
              'PoseEstimator (the node names what another object lacks); '
              f"'' = {DEFAULT_FACTORY}. Tests use "
              'robotag_ros.harness.fake_estimator:make_fake_estimator.', read_only=True,
              check=factory_problem),
    Parameter('camera_frame', '', "Camera optical frame for TF and outputs; '' = the image's "
              'header.frame_id.'),
    Parameter('base_frame', '', "Robot base frame; '' = the robot description's base frame "
              '(panda_link0 for the Panda).'),
    Parameter('publish_tf', True, 'Publish the camera <-> base transform on /tf.'),
    Parameter('tf_parent', 'camera', "Which frame is TF parent: 'camera' publishes T_cam_base "
              "(base as child of the camera), 'base' publishes T_base_cam (camera as child of "
              'the base).', choices=TF_PARENTS),
    Parameter('min_consistency', 0.0, 'Frames whose consistency score (0..1) is below this are '
              'not published (diagnostics still are).', value_range=(0.0, 1.0)),
    Parameter('track_robot', True, 'Look for the robot in the next frame where this frame found '
              "it, skipping the estimator's whole-frame first pass while its fit stays "
              "consistent (an estimator whose next_box() answers None, as the fake's, never "
              'tracks).'),
    Parameter('intrinsics', [0.0, 0.0, 0.0, 0.0], 'Fallback intrinsics [fx, fy, cx, cy] in '
              'pixels, used until a valid camera_info arrives; all zeros = wait for '
              'camera_info.', check=intrinsics_problem),
    Parameter('image_qos_reliability', 'best_effort', 'Reliability of the image and '
              "camera_info subscriptions: 'best_effort' (REP 2003 sensor data) or 'reliable'.",
              read_only=True, choices=RELIABILITIES),
    Parameter('image_qos_depth', 5, 'History depth of the image and camera_info '
              'subscriptions.', read_only=True, value_range=(1, 100)),
    Parameter('axis_length_m', 0.15, 'Length of the base axes drawn on ~/debug_image, metres.',
              value_range=(0.0, 10.0)),
    Parameter('measured_joint_states_topic', '', "JointState topic of the robot's encoders "
              '(e.g. /joint_states): each image takes the measured joints stamped nearest to '
              "it, only the camera is fitted, and the node publishes no JointState; '' = joints "
              'estimated from the image.', read_only=True),
    Parameter('measured_joint_states_max_age_s', 0.1, 'Largest stamp difference (seconds) '
              'between an image and the measured joint state used with it; frames without one '
              'are dropped (drop_cause no_measured_joints).', value_range=(0.0, 10.0)),
    # A camera that does not move (robotag_ros/calibration/static_camera.py, docs/uses.md).
    Parameter('static_camera', False, 'The camera does not move: keep a robust running '
              'estimate of its pose from the frames (median/MAD outlier rejection, rotation '
              f'averaging); once {_STATIC.min_frames} frames agree and its standard error is '
              f'below {_STATIC.stable_translation_mm:g} mm and {_STATIC.stable_rotation_deg:g} '
              'deg it is frozen, published (/tf, camera_pose) and held fixed in the fit, which '
              'then moves the joints alone (no mirror through the camera; diagnostics: '
              'static_camera_*). Ignored with measured_joint_states_topic (there the camera is '
              'what is measured).', read_only=True),
    Parameter('camera_calibration_file', '', 'An eye-on-base .calib (robotag-calibrate, '
              'easy_handeye2) of this camera: its pose is held fixed from the first frame, '
              "published as calibrated, and only the joints are fitted; '' = none. Its "
              "robot_base_frame must be the estimates' base frame; not with "
              'measured_joint_states_topic.', read_only=True),
    # Online fine-tuning hooks (robotag_ros.finetune.hooks, docs/uses.md); both off by default.
    Parameter('record_buffer_dir', '', "Folder of the bounded frame buffer for online "
              "fine-tuning; '' = off.", read_only=True),
    Parameter('record_every_n', 10, 'Record every n-th processed frame into the buffer.',
              read_only=True, value_range=(1, 10000)),
    Parameter('record_buffer_capacity', 500, 'Frames the buffer keeps (oldest deleted).',
              read_only=True, value_range=(1, 1000000)),
    Parameter('models_dir', '', "Model store: serve its 'current' artifact and swap in better "
              "fine-tuned candidates (needs record_buffer_dir); '' = off.", read_only=True),
)
