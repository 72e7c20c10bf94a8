"""Evaluation metrics exactly as the field computes them (ADD AUC, joint errors, camera, PCK)."""
from robotag_ros.metrics.pose_metrics import (
    add_auc_percent, add_per_image, add_share_under_percent, camera_pose_errors, joint_errors_deg,
    keypoint_2d_error_px, pck_auc_percent, rotation_error_deg,
)
from robotag_ros.metrics.report import GroundTruthFrame, evaluate, format_table

__all__ = [
    'add_auc_percent', 'add_per_image', 'add_share_under_percent', 'camera_pose_errors',
    'joint_errors_deg', 'keypoint_2d_error_px', 'pck_auc_percent', 'rotation_error_deg',
    'GroundTruthFrame', 'evaluate', 'format_table',
]
