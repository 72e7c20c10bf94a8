"""The calibration node's parameters (robotag_ros/ros/calibration_node.py): the schema that
declares them and fills config/calibrator.yaml. All are fixed at start-up."""
from __future__ import annotations

from robotag_ros.calibration.hand_eye import CALIBRATION_TYPES
from robotag_ros.parameters.schema import Parameter


def _fixed(name, default, description, **options) -> Parameter:
    return Parameter(name, default, description, read_only=True, **options)


CALIBRATOR_PARAMETERS = (
    _fixed('calibration_type', 'eye_on_base', f'One of {", ".join(CALIBRATION_TYPES)}.',
           choices=CALIBRATION_TYPES),
    _fixed('name', 'robotag', 'Calibration name (.calib file stem).'),
    _fixed('output', '', "The .calib file; '' = "
           '~/.ros2/easy_handeye2/calibrations/<name>.calib (easy_handeye2\'s folder).'),
    _fixed('base_frame', 'panda_link0', 'Robot base frame (the camera_pose frame).'),
    _fixed('camera_frame', 'camera_color_optical_frame', 'Camera optical frame.'),
    _fixed('effector_frame', 'panda_hand', 'Link the camera is on (eye_in_hand).'),
    _fixed('robot', 'panda', 'Robot name or YAML (eye_in_hand forward kinematics).'),
    _fixed('joint_states_topic', '/joint_states', "The robot's measured joint states "
           "(eye_in_hand). Remap the estimator's own joint_states away from it."),
    _fixed('frames_to_calibrate', 200, 'Calibrate after every this many new frames; 0 = only '
           'on request.', value_range=(0, 1000000)),
    _fixed('max_frames', 2000, 'Newest frames kept for the calibration.',
           value_range=(1, 1000000)),
    _fixed('min_consistency', 0.5, "Drop frames the estimator scored below this (its "
           'consistency, 0..1).', value_range=(0.0, 1.0)),
    _fixed('reject_outliers', True, 'Robust outlier rejection on the per-frame poses (median + '
           'mad_k * MAD).'),
    _fixed('mad_k', 3.0, 'Outlier threshold in robust standard deviations.',
           value_range=(0.1, 100.0)),
    _fixed('stamp_tolerance_s', 0.05, 'Largest stamp difference when matching consistency and '
           'joint states to a pose, seconds.', value_range=(0.0, 10.0)),
    _fixed('publish_calib_file', '', 'An existing .calib to publish on /tf_static at start-up '
           '(like easy_handeye2).'),
)
