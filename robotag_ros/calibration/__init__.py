"""Markerless hand-eye calibration: robust aggregation of per-frame estimates, .calib file I/O."""
from robotag_ros.calibration.aggregate import AggregateResult, aggregate_transforms
from robotag_ros.calibration.calib_file import (
    HandEyeCalibration, calibration_from_dict, calibration_to_dict, read_calib, write_calib,
)
from robotag_ros.calibration.estimates_io import (
    EstimateSeries, load_estimates_file, read_estimates_bag, save_estimates_json,
)
from robotag_ros.calibration.hand_eye import (
    EYE_IN_HAND, EYE_ON_BASE, calibrate_eye_in_hand, calibrate_eye_on_base,
    hand_camera_transforms, robot_forward_kinematics,
)

__all__ = [
    'AggregateResult', 'aggregate_transforms', 'HandEyeCalibration', 'calibration_from_dict',
    'calibration_to_dict', 'read_calib', 'write_calib', 'EYE_IN_HAND', 'EYE_ON_BASE',
    'calibrate_eye_in_hand', 'calibrate_eye_on_base', 'hand_camera_transforms',
    'robot_forward_kinematics', 'EstimateSeries', 'load_estimates_file', 'read_estimates_bag',
    'save_estimates_json',
]
