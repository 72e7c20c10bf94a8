"""The field's metrics against values computed by hand on toy cases."""
import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from robotag_ros.metrics import (
    GroundTruthFrame, add_auc_percent, add_per_image, add_share_under_percent, camera_pose_errors,
    evaluate, format_table, joint_errors_deg, keypoint_2d_error_px, pck_auc_percent,
)


def test_add_per_image_is_mean_keypoint_distance():
    gt = np.zeros((2, 3, 3))
    pred = gt.copy()
    pred[0, :, :2] = [0.003, 0.004]        # every keypoint 5 mm off
    pred[1, 0, 2] = 0.009                  # one of three keypoints 9 mm off
    np.testing.assert_allclose(add_per_image(pred, gt), [0.005, 0.003])


def test_add_auc_all_zero_is_area_of_a_full_curve():
    # 10,000 thresholds all at accuracy 1: trapezoid over 9,999 steps of 1e-5 m / 0.1 m.
    assert add_auc_percent(np.zeros(7)) == pytest.approx(99.99, abs=1e-9)


def test_add_auc_constant_5cm():
    # accuracy is 0 up to threshold index 4999 and 1 from index 5000 (v = 0.05, non-strict):
    # one half step + 4,999 full steps of 1e-5 m, over 0.1 m.
    assert add_auc_percent(np.full(4, 0.05)) == pytest.approx(49.995, abs=1e-9)


def test_add_auc_counts_every_image_in_the_denominator():
    far_and_failed = np.array([0.0, 0.0, 0.2, np.nan])
    assert add_auc_percent(far_and_failed) == pytest.approx(99.99 / 2, abs=1e-9)


def test_add_shares_under_thresholds():
    shares = add_share_under_percent(np.array([0.0005, 0.003, 0.05, 0.2]))
    assert shares == {'add_under_1mm_percent': 25.0, 'add_under_5mm_percent': 50.0,
                      'add_under_10mm_percent': 50.0, 'add_under_20mm_percent': 50.0,
                      'add_under_40mm_percent': 50.0, 'add_under_60mm_percent': 75.0,
                      'add_under_80mm_percent': 75.0, 'add_under_100mm_percent': 75.0}


def test_joint_errors_in_degrees():
    gt = np.zeros((2, 3))
    pred = np.radians([[10.0, 0.0, -20.0], [0.0, 30.0, 0.0]])
    np.testing.assert_allclose(joint_errors_deg(pred, gt), [[10, 0, 20], [0, 30, 0]])


def test_camera_pose_errors():
    gt = np.tile(np.eye(4), (2, 1, 1))
    pred = gt.copy()
    pred[0, :3, :3] = Rotation.from_euler('z', 30, degrees=True).as_matrix()
    pred[0, :3, 3] = [0.003, 0.0, 0.004]
    pred[1, :3, :3] = Rotation.from_euler('x', 180, degrees=True).as_matrix()
    translation_mm, rotation_deg = camera_pose_errors(pred, gt)
    np.testing.assert_allclose(translation_mm, [5.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(rotation_deg, [30.0, 180.0], atol=1e-6)


def test_pck_uses_only_keypoints_inside_the_image():
    gt = np.array([[[10.0, 10.0], [100.0, 50.0], [150.0, 50.0]],   # the last is outside (W=100)
                   [[-5.0, 3.0], [3.0, 500.0], [120.0, 1.0]]])     # none inside
    pred = gt + np.array([[[2.0, 0.0], [0.0, 2.0], [100.0, 0.0]],
                          [[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]]])
    errors = keypoint_2d_error_px(pred, gt, (100, 100))
    assert errors[0] == pytest.approx(2.0)
    assert math.isnan(errors[1])
    # accuracy 1 from threshold index 200 (2.0 px): half a step + 1,799 steps of 0.01 px, / 20 px.
    assert pck_auc_percent(errors) == pytest.approx(100 * 1799.5 * 0.01 / 20, abs=1e-9)


def test_evaluate_places_fk_keypoints_with_the_predicted_camera():
    joint_names = ['j1', 'j2']
    base_keypoints = np.array([[0.0, 0.0, 0.0], [0.1, 0.0, 0.0]])

    def keypoints_base_fn(q):
        return np.broadcast_to(base_keypoints, (len(q), 2, 3))

    T_gt = np.eye(4)
    T_gt[2, 3] = 1.0
    T_pred = T_gt.copy()
    T_pred[0, 3] = 0.050055     # ADD 50.055 mm: between thresholds, so float noise cannot matter
    gt = GroundTruthFrame(joint_angles_rad=np.zeros(2), T_cam_base=T_gt,
                          keypoints_3d_m=base_keypoints + [0.0, 0.0, 1.0],
                          keypoints_2d_px=np.array([[10.0, 10.0], [20.0, 20.0]]),
                          image_size_hw=(64, 64))
    prediction = {'joint_angles_rad': np.radians([4.0, 2.0]), 'T_cam_base': T_pred,
                  'keypoints_3d_m': np.zeros((2, 3)),     # ignored: FK is given
                  'keypoints_2d_px': np.array([[10.0, 10.0], [20.0, 20.0]])}
    metrics = evaluate([prediction], [gt], joint_names, keypoints_base_fn)
    assert metrics['num_frames'] == 1
    # accuracy 1 from threshold index 5006 (0.05006 m): half a step + 4,993 steps, / 0.1 m.
    assert metrics['add_auc'] == pytest.approx(49.935, abs=1e-9)
    assert metrics['mean_joint_error_deg'] == pytest.approx(3.0)
    assert metrics['per_joint_error_deg'] == pytest.approx({'j1': 4.0, 'j2': 2.0})
    assert metrics['median_joint_error_j1_6_deg'] == pytest.approx(3.0)
    assert metrics['joint_error_j1_6_under_5deg_percent'] == 100.0
    assert metrics['camera_translation_error_mm'] == pytest.approx(50.055)
    assert metrics['camera_rotation_error_deg'] == pytest.approx(0.0, abs=1e-6)
    assert metrics['pck_auc'] == pytest.approx(99.95, abs=1e-9)
    assert metrics['add_under_60mm_percent'] == 100.0
    table = format_table(metrics)
    assert 'per_joint_error_deg[j1]' in table and 'add_auc' in table


def test_evaluate_without_camera_labels_gives_nan():
    gt = {'joint_angles_rad': np.zeros(1), 'T_cam_base': None, 'keypoints_3d_m': None}
    prediction = {'joint_angles_rad': np.zeros(1), 'T_cam_base': np.eye(4)}
    metrics = evaluate([prediction], [gt], ['j1'])
    assert math.isnan(metrics['add_auc']) and math.isnan(metrics['camera_rotation_error_deg'])
    assert metrics['mean_joint_error_deg'] == 0.0


def test_frames_without_joint_labels_are_skipped_and_counted():
    """One unlabelled frame leaves the joint error of the labelled ones, not NaN."""
    labelled = {'joint_angles_rad': np.radians([2.0]), 'T_cam_base': None, 'keypoints_3d_m': None}
    unlabelled = dict(labelled, joint_angles_rad=None)
    prediction = {'joint_angles_rad': np.zeros(1), 'T_cam_base': np.eye(4)}
    metrics = evaluate([prediction] * 3, [labelled, unlabelled, labelled], ['j1'])
    assert metrics['num_frames'] == 3 and metrics['joint_num_frames'] == 2
    assert metrics['mean_joint_error_deg'] == pytest.approx(2.0)
    assert metrics['per_joint_error_deg'] == pytest.approx({'j1': 2.0})
    none = evaluate([prediction], [unlabelled], ['j1'])
    assert none['joint_num_frames'] == 0 and math.isnan(none['mean_joint_error_deg'])


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match='N, K, 3'):
        add_per_image(np.zeros((1, 2, 3)), np.zeros((1, 3, 3)))
    with pytest.raises(ValueError, match='predictions'):
        evaluate([{}], [], ['j1'])


def test_mirrored_frames_and_view_accuracy():
    """A frame is mirrored when joint 1 or the camera's azimuth about the base is off by more
    than 90 deg; the view head's sector is scored against the camera's azimuth."""
    import math
    from robotag_ros.metrics.pose_metrics import camera_azimuth_error_deg, mirrored_frames_percent
    from robotag_ros.metrics.report import evaluate

    def camera(azimuth_deg):
        a = math.radians(azimuth_deg)
        centre = np.array([2 * math.cos(a), 2 * math.sin(a), 0.5])
        T = np.eye(4)
        T[:3, 3] = -centre           # identity rotation: t = -R centre
        return T

    truths = [camera(10), camera(170), camera(-100)]
    estimates = [camera(30), camera(-20), camera(-100)]
    assert np.allclose(camera_azimuth_error_deg(np.stack(estimates), np.stack(truths)),
                       [20, 170, 0])
    joints = np.zeros((3, 7))
    joint_errors = np.zeros((3, 7))
    joint_errors[2, 0] = 120.0       # the third frame: joint 1 off by 120 deg
    assert mirrored_frames_percent(joint_errors, [20, 170, 0]) == pytest.approx(200 / 3)
    probs = np.zeros((3, 4))
    probs[0, 2] = probs[1, 1] = probs[2, 0] = 1.0   # sectors from -180: [0, 90), [-90, 0)...
    predictions = [{'joint_angles_rad': joints[i], 'T_cam_base': estimates[i],
                    'view_azimuth_probs': probs[i]} for i in range(3)]
    ground_truths = [{'joint_angles_rad': joints[i], 'T_cam_base': truths[i]} for i in range(3)]
    result = evaluate(predictions, ground_truths, [f'j{i}' for i in range(7)])
    assert result['mirrored_frames_percent'] == pytest.approx(100 / 3)
    # Truth sectors: 10 deg -> 2, 170 deg -> 3, -100 deg -> 0; guessed 2, 1, 0.
    assert result['view_sector_accuracy_percent'] == pytest.approx(200 / 3)
    assert result['view_front_back_accuracy_percent'] == pytest.approx(200 / 3)
