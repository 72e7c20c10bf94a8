"""Self-labelling fine-tuning: labels from forward kinematics + the calibrated camera, the robust
drop of frames the network disagrees with, the swap gate's verdict, and the whole command on a
rendered recording with a tiny model (wiring, not accuracy)."""
import json
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
import yaml
from scipy.spatial.transform import Rotation

from robotag_ros.calibration import robot_forward_kinematics
from robotag_ros.calibration.calib_file import HandEyeCalibration, write_calib
from robotag_ros.finetune.self_label import (
    agreeing_frames, label_disagreement_px, label_frames,
)

T_CAM_BASE = np.eye(4)
T_CAM_BASE[:3, :3] = Rotation.from_euler('xyz', [-110, 0, 90], degrees=True).as_matrix()
T_CAM_BASE[:3, 3] = [0.0, 0.3, 1.6]
K = np.array([[615.0, 0.0, 320.0], [0.0, 615.0, 240.0], [0.0, 0.0, 1.0]])


def calibration(calibration_type, T):
    return HandEyeCalibration('test', calibration_type, T, 'panda_link0', 'panda_hand',
                              'camera_color_optical_frame')


def joints(panda, count, seed=0):
    return panda.sample_joint_angles(count, generator=torch.Generator().manual_seed(seed)
                                     ).double().numpy()


def test_labels_are_forward_kinematics_seen_by_the_calibrated_camera(panda):
    q = joints(panda, 6)
    labels = label_frames(panda, calibration('eye_on_base', T_CAM_BASE), q, np.stack([K] * 6))
    keypoints_base = panda.keypoints(torch.as_tensor(q, dtype=torch.float32)).double().numpy()
    for i in range(6):
        np.testing.assert_allclose(labels.T_cam_base[i], T_CAM_BASE)
        camera = keypoints_base[i] @ T_CAM_BASE[:3, :3].T + T_CAM_BASE[:3, 3]
        np.testing.assert_allclose(labels.keypoints_3d_m[i], camera, atol=1e-6)
        pixels = np.stack([615.0 * camera[:, 0] / camera[:, 2] + 320.0,
                           615.0 * camera[:, 1] / camera[:, 2] + 240.0], axis=1)
        np.testing.assert_allclose(labels.keypoints_2d_px[i], pixels, atol=1e-3)
    np.testing.assert_array_equal(labels.joint_angles_rad, q)


def test_eye_in_hand_labels_follow_the_hand(panda):
    T_cam_ee = np.eye(4)
    T_cam_ee[:3, 3] = [0.0, -0.05, 0.04]
    q = joints(panda, 4)
    labels = label_frames(panda, calibration('eye_in_hand', T_cam_ee), q, np.stack([K] * 4))
    T_base_ee = robot_forward_kinematics(panda, 'panda_hand')(q)
    for i in range(4):
        np.testing.assert_allclose(labels.T_cam_base[i] @ T_base_ee[i], T_cam_ee, atol=1e-6)


def test_a_frame_with_a_wrong_joint_state_is_dropped(panda):
    """The network sees the robot where it is (within a pixel or two); one frame was matched to
    another frame's joint state, so its labels are off: only it is dropped."""
    rng = np.random.default_rng(0)
    q = joints(panda, 30, seed=1)
    truth = label_frames(panda, calibration('eye_on_base', T_CAM_BASE), q, np.stack([K] * 30))
    estimates = [SimpleNamespace(keypoints_2d_px=None,
                                 keypoints_2d_detected_px=p + rng.normal(0, 1.5, p.shape))
                 for p in truth.keypoints_2d_px]
    mismatched = q.copy()
    mismatched[12] = q[20]
    labels = label_frames(panda, calibration('eye_on_base', T_CAM_BASE), mismatched,
                          np.stack([K] * 30))
    disagreement = label_disagreement_px(labels.keypoints_2d_px, estimates)
    keep = agreeing_frames(disagreement)
    assert disagreement[12] > 20.0 and np.median(disagreement) < 3.0
    assert np.flatnonzero(~keep).tolist() == [12]


class ScoredEstimator:
    """estimate_batch with a chosen fit residual (the gate's score) and keypoints detected at a
    chosen distance from the held-out labels (a dict: per set, keyed by the set's images)."""

    def __init__(self, residual_px, offset_px, labels_2d):
        self.residual_px, self.offset_px, self.labels_2d = residual_px, offset_px, labels_2d

    def estimate_batch(self, images, intrinsics, with_points=True, joint_angles_rad=None):
        offset = self.offset_px[images[0]] if isinstance(self.offset_px, dict) \
            else self.offset_px
        return [SimpleNamespace(consistency=0.5,
                                consistency_terms={'fit_residual_px': self.residual_px},
                                keypoints_2d_detected_px=self.labels_2d[i] + offset,
                                keypoints_2d_px=None) for i in range(len(images))]


def test_the_gate_accepts_a_better_candidate_and_rejects_worse_ones():
    from robotag_ros.training.self_label import judge

    labels_2d = np.random.default_rng(0).uniform(0, 400, (4, 7, 2))
    heldout = {'images': [None] * 4, 'intrinsics': [K] * 4, 'joints': [np.zeros(7)] * 4,
               'keypoints_2d_px': labels_2d}
    current = ScoredEstimator(6.0, 8.0, labels_2d)
    better = judge(current, ScoredEstimator(3.0, 2.0, labels_2d), heldout)
    assert better['accepted'] and better['swap_gate_accepts']
    assert better['holdout_label_error_px_after'] == pytest.approx(2.0 * np.sqrt(2))
    worse = judge(current, ScoredEstimator(9.0, 12.0, labels_2d), heldout)
    assert not worse['accepted'] and not worse['swap_gate_accepts']
    # the gate's label-free score alone would take one whose keypoints left the labels
    drifted = judge(current, ScoredEstimator(3.0, 20.0, labels_2d), heldout)
    assert drifted['swap_gate_accepts'] and not drifted['accepted']


def test_the_gate_rejects_a_candidate_that_learned_the_recording_by_heart():
    """Better on the recording's held-out part, worse on rendered robots in general: rejected;
    as good on those within the tolerance: accepted."""
    from robotag_ros.training.self_label import judge

    labels_2d = np.random.default_rng(0).uniform(0, 400, (4, 7, 2))
    heldout = {'images': ['recording'] * 4, 'intrinsics': [K] * 4,
               'joints': [np.zeros(7)] * 4, 'keypoints_2d_px': labels_2d}
    generic = {'images': ['generic'] * 4, 'intrinsics': [K] * 4, 'joints': None,
               'keypoints_2d_px': labels_2d}
    current = ScoredEstimator(6.0, {'recording': 8.0, 'generic': 4.0}, labels_2d)
    by_heart = judge(current, ScoredEstimator(3.0, {'recording': 2.0, 'generic': 9.0},
                                              labels_2d), heldout, generic)
    assert by_heart['swap_gate_accepts'] and not by_heart['generic_ok']
    assert not by_heart['accepted']
    assert by_heart['generic_label_error_px_after'] == pytest.approx(9.0 * np.sqrt(2))
    general = judge(current, ScoredEstimator(3.0, {'recording': 2.0, 'generic': 4.3},
                                             labels_2d), heldout, generic, 0.1)
    assert general['generic_ok'] and general['accepted']


def test_the_held_out_frames_are_the_recordings_last_part_after_a_gap():
    from robotag_ros.training.self_label import time_block_holdout

    kept = np.array([0, 1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20])
    train, held = time_block_holdout(kept, 0.2, 3)
    assert held.tolist() == [17, 18, 19, 20]
    assert train.tolist() == kept[:13].tolist()     # 14, 15, 16: the gap
    with pytest.raises(ValueError):
        time_block_holdout(kept, 1.0, 0)


def test_self_label_finetune_end_to_end_with_a_tiny_model(tmp_path, panda, capsys):
    from inference_fixtures import make_tiny_artifact

    from robotag_ros.data.bags.sample_bag import render_sample_bag
    from robotag_ros.data.dream.dataset import DreamDataset
    from robotag_ros.model.artifact import load_sidecar
    from robotag_ros.training.cli import finetune_main

    frames = render_sample_bag(tmp_path / 'bag', panda, 7, 12,
                               joint_states_topic='/joint_states')
    model = make_tiny_artifact(tmp_path / 'tiny', panda, training={'joint_source': 'mean'})
    write_calib(tmp_path / 'truth.calib', calibration('eye_on_base', frames[0].T_cam_base))
    out, report_path = tmp_path / 'candidate', tmp_path / 'report.json'
    assert finetune_main(['--self-label', str(tmp_path / 'bag'), '--model', str(model),
                          '--calib', str(tmp_path / 'truth.calib'), '--out', str(out),
                          '--holdout-fraction', '0.25', '--holdout-gap', '1',
                          '--replay-frames', '3', '--generic-check-frames', '2',
                          '--backend', 'torch',
                          '--report-json', str(report_path),
                          'optim.epochs=1', 'optim.batch_size=2']) == 0, capsys.readouterr().err
    assert out.with_suffix('.safetensors').is_file() and out.with_suffix('.yaml').is_file()
    # no held-out set measured the joint branches anew: the starting model's choice stays
    assert load_sidecar(out).training['joint_source'] == 'mean'
    report = json.loads(report_path.read_text())
    assert report['frames_estimated'] == 12
    assert (report['frames_trained'] + report['frames_held_out']
            + report['frames_dropped_holdout_gap'] + report['frames_dropped_disagreeing']
            + report['frames_dropped_camera_moved']) == 12
    assert report['frames_trained'] >= 2 and report['steps'] >= 1
    # the held-out block is the recording's end: from its first stamp on, nothing was trained
    stamps = np.array([f.stamp_ns for f in frames])
    from_holdout = stamps >= report['holdout_from_stamp_ns']
    assert report['holdout_from_stamp_ns'] in stamps
    assert report['frames_held_out'] <= from_holdout.sum() < 12
    assert (~from_holdout).sum() >= report['frames_trained'] + report['frames_dropped_holdout_gap']
    assert report['frames_replayed'] == 3 and 'generic_label_error_px_after' in report
    assert report['accepted'] == (report['swap_gate_accepts'] and report['generic_ok'] and (
        report['holdout_label_error_px_after'] < report['holdout_label_error_px_before']))
    labelled = DreamDataset(tmp_path / 'candidate_run' / 'self_labelled', panda)
    assert len(labelled) == report['frames_trained']
    truth = labelled.raw_frame(0)['ground_truth']
    matches = [f for f in frames if np.allclose(f.joint_angles_rad, truth.joint_angles_rad,
                                                atol=1e-6)]
    assert len(matches) == 1
    np.testing.assert_allclose(truth.T_cam_base, frames[0].T_cam_base, atol=1e-5)
    # each labelled frame carries the robot's rendered silhouette, under its keypoints
    from robotag_ros.data.dream.format import EXTRAS_DIR, MASK_SUFFIX
    mask_path = tmp_path / 'candidate_run' / 'self_labelled' / EXTRAS_DIR / f'000000{MASK_SUFFIX}'
    silhouette = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE) > 127
    height, width = silhouette.shape
    pixels = np.round(truth.keypoints_2d_px).astype(int)
    inside = [silhouette[v, u] for u, v in pixels if 0 <= u < width and 0 <= v < height]
    assert len(inside) >= 10 and np.mean(inside) > 0.7
    assert 0.005 < silhouette.mean() < 0.6


def test_the_robot_is_pasted_on_another_background():
    from robotag_ros.data.dream.dataset import BACKGROUND_MASK_MARGIN_PX, replace_background

    image = np.full((40, 50, 3), 200, np.uint8)
    robot = np.zeros((40, 50), bool)
    robot[10:20, 15:30] = True
    pasted = replace_background(image, robot, np.zeros_like(image))
    margin = BACKGROUND_MASK_MARGIN_PX
    assert (pasted[10 - margin:20 + margin, 15 - margin:30 + margin] == 200).all()
    assert (pasted[:10 - margin - 1] == 0).all() and (pasted[:, 30 + margin + 1:] == 0).all()


def test_two_recordings_are_each_labelled_through_their_own_camera(
        tmp_path, panda, monkeypatch, capsys):
    """Two recordings (the camera moved between them): each is labelled with its own
    calibration, both train one candidate, both held-out parts judge it; a .calib, which
    names one camera, is refused for two."""
    from inference_fixtures import make_tiny_artifact

    from robotag_ros.data.bags.sample_bag import render_sample_bag
    from robotag_ros.data.dream.dataset import DreamDataset
    from robotag_ros.training import self_label as module
    from robotag_ros.training.cli import finetune_main

    bags = [tmp_path / 'first', tmp_path / 'second']
    recorded = [render_sample_bag(bag, panda, seed, 10, joint_states_topic='/joint_states')
                for bag, seed in zip(bags, (7, 8))]
    cameras = {str(bag): frames[0].T_cam_base for bag, frames in zip(bags, recorded)}
    assert not np.allclose(*cameras.values(), atol=1e-3)   # two cameras, not one
    # The tiny model's estimates cannot calibrate; the calibration step is what is replaced.
    monkeypatch.setattr(module, '_calibration', lambda recording, estimator, options: (
        calibration('eye_on_base', cameras[str(recording.plan.bag_path)]),
        np.ones(len(recording.series), dtype=bool), {}))
    model = make_tiny_artifact(tmp_path / 'tiny', panda)
    out = tmp_path / 'candidate'
    report = module.run_self_label(
        bags, str(model), out, module.SelfLabelOptions(
            backend='torch', holdout_fraction=0.25, holdout_gap_frames=1, replay_frames=2,
            generic_check_frames=0),
        overrides=['optim.epochs=1', 'optim.batch_size=2'])
    assert report['recordings'] == 2 and report['frames_estimated'] == 20
    assert report['frames_held_out'] >= 4           # each recording's last part
    run_dir = tmp_path / 'candidate_run'
    for index, frames in enumerate(recorded, start=1):
        labelled = DreamDataset(run_dir / f'self_labelled_{index}', panda)
        assert 2 <= len(labelled) < 10
        np.testing.assert_allclose(labelled.raw_frame(0)['ground_truth'].T_cam_base,
                                   frames[0].T_cam_base, atol=1e-5)
        assert (run_dir / f'labels_{index}.calib').is_file()
    trained = yaml.safe_load((run_dir / 'config.yaml').read_text())['config']
    assert sorted(trained['data']['single_camera']) == sorted(
        str(run_dir / f'self_labelled_{i}') for i in (1, 2))
    assert report['frames_trained'] == sum(
        len(DreamDataset(run_dir / f'self_labelled_{i}', panda)) for i in (1, 2))

    write_calib(tmp_path / 'one.calib', calibration('eye_on_base', recorded[0][0].T_cam_base))
    capsys.readouterr()                              # the run above's progress bars
    assert finetune_main(['--self-label', *map(str, bags), '--calib',
                          str(tmp_path / 'one.calib'), '--out', str(tmp_path / 'refused')]) == 2
    error = capsys.readouterr().err
    assert 'a .calib labels one camera' in error and len(error.strip().splitlines()) == 1
    assert not (tmp_path / 'refused.safetensors').exists()
