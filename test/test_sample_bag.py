"""The sample sequence, its rosbag2 and the scoring of node outputs against its ground truth.

ROS-free (rosbags only): runs where rclpy is absent.
"""
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from robotag_ros.data.bags.sample_bag import (CAMERA_POSE_TOPIC, IMAGE_TOPIC, read_sample_bag,
                                              write_sample_bag)
from robotag_ros.data.synthetic.sample_sequence import (
    SAMPLE_FRAME_ID, SAMPLE_NUM_FRAMES, SequenceFrame, joint_trajectory, minimum_jerk)
from robotag_ros.bundled import sample_bag_path
from robotag_ros.harness.sample_run import score_frames, summarize
from robotag_ros.stamps import stamp_key

JOINTS = [f'panda_joint{i}' for i in range(1, 8)]


def _T(rotvec, translation):
    T = np.eye(4)
    T[:3, :3] = Rotation.from_rotvec(rotvec).as_matrix()
    T[:3, 3] = translation
    return T


def _frames(count=3, height=24, width=32):
    rng = np.random.default_rng(0)
    K = np.array([[30.0, 0, 16], [0, 30.0, 12], [0, 0, 1]])
    # Smooth, and different per channel, so that JPEG keeps it and a channel swap shows.
    rows, cols = np.mgrid[0:height, 0:width]
    rgb = np.stack([cols * 255 // width, rows * 255 // height, np.full_like(rows, 40)],
                   axis=2).astype(np.uint8)
    return [SequenceFrame(rgb=rgb,
                          joint_angles_rad=rng.uniform(-1, 1, 7),
                          T_cam_base=_T(rng.uniform(-1, 1, 3), rng.uniform(-1, 1, 3) + [0, 0, 2]),
                          K=K, stamp_ns=1_700_000_000_000_000_000 + i * 66_666_667)
            for i in range(count)]


def test_trajectory_passes_through_the_waypoints_and_rests_at_them():
    waypoints = np.array([[0.0, 1.0], [1.0, -1.0], [2.0, 0.5]])
    q = joint_trajectory(waypoints, 21)
    np.testing.assert_allclose(q[[0, 10, 20]], waypoints)
    assert minimum_jerk(np.array([0.0, 0.5, 1.0])).tolist() == [0.0, 0.5, 1.0]
    steps = np.abs(np.diff(q, axis=0)).max(axis=1)
    assert steps[0] < steps[4] and steps[9] < steps[4]   # slow at rest points, fast between


def test_bag_round_trip_keeps_ground_truth_and_is_deterministic(tmp_path):
    frames = _frames()
    bags = [write_sample_bag(tmp_path / run / 'bag', frames, JOINTS, 'panda_link0',
                             SAMPLE_FRAME_ID) for run in ('first', 'second')]
    files = sorted(p.name for p in bags[0].iterdir())
    assert files == sorted(p.name for p in bags[1].iterdir())
    assert all((bags[0] / f).read_bytes() == (bags[1] / f).read_bytes() for f in files)
    read = read_sample_bag(bags[0])
    assert [f.stamp_ns for f in read] == [f.stamp_ns for f in frames]
    for original, back in zip(frames, read):
        assert (back.frame_id, back.base_frame, back.joint_names) == (
            SAMPLE_FRAME_ID, 'panda_link0', JOINTS)
        np.testing.assert_allclose(back.joint_angles_rad, original.joint_angles_rad)
        np.testing.assert_allclose(back.T_cam_base, original.T_cam_base, atol=1e-9)
        np.testing.assert_allclose(back.K, original.K)
        # JPEG: close, not equal.
        assert np.abs(back.image_rgb.astype(int) - original.rgb).mean() < 4
    with pytest.raises(FileExistsError):
        write_sample_bag(bags[0], frames, JOINTS, 'panda_link0', SAMPLE_FRAME_ID)


def test_reading_a_bag_without_ground_truth_names_what_is_missing(tmp_path):
    from robotag_ros.data.bags.bag_images import BagReadError, write_image_bag
    write_image_bag(tmp_path / 'plain', [np.zeros((8, 8, 3), np.uint8)], np.eye(3))
    with pytest.raises(BagReadError, match=CAMERA_POSE_TOPIC):
        read_sample_bag(tmp_path / 'plain')
    with pytest.raises(FileNotFoundError):
        read_sample_bag(tmp_path / 'absent')


def test_committed_sample_bag_is_small_and_consistent():
    bag = sample_bag_path()
    size_mb = sum(p.stat().st_size for p in bag.iterdir()) / 1e6
    assert size_mb < 2.0
    frames = read_sample_bag(bag)
    assert len(frames) == SAMPLE_NUM_FRAMES
    assert {f.frame_id for f in frames} == {SAMPLE_FRAME_ID}
    assert all(f.image_rgb.shape == (480, 640, 3) for f in frames)
    # A fixed camera and a moving arm.
    assert all(np.allclose(f.T_cam_base, frames[0].T_cam_base) for f in frames)
    motion = np.abs(frames[-1].joint_angles_rad - frames[0].joint_angles_rad).max()
    assert motion > 0.3
    from robotag_ros.data.bags.bag_images import bag_topics
    assert bag_topics(bag)[IMAGE_TOPIC] == 'sensor_msgs/msg/CompressedImage'


def test_a_knocked_camera_moves_from_its_frame_on_and_nothing_else_changes(panda):
    """camera_bump (the calibration benchmark's knocked tripod): the same recording up to the
    knock; after it, the camera pose composed with the bump, the joints as before."""
    from robotag_ros.data.synthetic.sample_sequence import SequenceRenderer
    bump = _T([0.0, 0.02, 0.0], [0.03, 0.0, 0.0])
    renderer = SequenceRenderer(panda, height=120, width=160)
    try:
        still = renderer.render(seed=3, num_frames=6, intrinsics_px=(150, 150, 80, 60))
        knocked = renderer.render(seed=3, num_frames=6, intrinsics_px=(150, 150, 80, 60),
                                  camera_bump=(3, bump))
    finally:
        renderer.close()
    for index, (a, b) in enumerate(zip(still, knocked)):
        np.testing.assert_array_equal(a.joint_angles_rad, b.joint_angles_rad)
        expected = a.T_cam_base if index < 3 else np.linalg.inv(bump) @ a.T_cam_base
        np.testing.assert_allclose(b.T_cam_base, expected, atol=1e-12)
        assert (index < 3) == np.array_equal(a.rgb, b.rgb)


def test_committed_sample_bag_is_what_the_renderer_makes(panda):
    """Ground truth exactly, pixels up to JPEG loss (the byte-for-byte check is
    `scripts/make_sample_bag.py --check`, exact only on the same GL driver)."""
    from robotag_ros.data.synthetic.sample_sequence import SequenceRenderer
    renderer = SequenceRenderer(panda)
    try:
        fresh = renderer.render()
    finally:
        renderer.close()
    committed = read_sample_bag(sample_bag_path())
    for new, old in zip(fresh, committed):
        assert new.stamp_ns == old.stamp_ns
        np.testing.assert_allclose(old.joint_angles_rad, new.joint_angles_rad, atol=1e-12)
        np.testing.assert_allclose(old.T_cam_base, new.T_cam_base, atol=1e-9)
        assert np.abs(old.image_rgb.astype(int) - new.rgb).mean() < 3.0


def _outputs(frames, joint_offset_rad=0.0, camera_shift_m=(0.0, 0.0, 0.0), tf_parent='camera'):
    """Player records and listener record as the node would publish them."""
    played, listened = [], {'joint_states': [], 'tf': [], 'camera_pose': []}
    for index, frame in enumerate(frames):
        key = stamp_key(frame.stamp_ns)
        played.append({'index': index, 'stamp': key, 'answer': {
            'level': 0, 'message': 'estimate published',
            'values': {'consistency': '0.5', 'latency_receive_to_publish_ms': str(10 + index),
                       'inference_ms': '8'}}})
        listened['joint_states'].append({'stamp': key, 'name': JOINTS, 'position': list(
            frame.joint_angles_rad + joint_offset_rad)})
        T_base_cam = np.linalg.inv(frame.T_cam_base)
        T_base_cam[:3, 3] += camera_shift_m
        T = np.linalg.inv(T_base_cam) if tf_parent == 'camera' else T_base_cam
        listened['tf'].append({'stamp': key, 'parent': 'c', 'child': 'b',
                               'translation': list(T[:3, 3]),
                               'rotation_xyzw': list(Rotation.from_matrix(T[:3, :3]).as_quat())})
    return played, listened


@pytest.mark.parametrize('tf_parent', ['camera', 'base'])
def test_scoring_exact_outputs_gives_zero_error(tf_parent):
    frames = [type('F', (), dict(stamp_ns=f.stamp_ns, joint_names=JOINTS,
                                 joint_angles_rad=f.joint_angles_rad, T_cam_base=f.T_cam_base))
              for f in _frames()]
    played, listened = _outputs(frames, tf_parent=tf_parent)
    summary = summarize(score_frames(frames, played, listened, tf_parent=tf_parent))
    assert summary['frames_published'] == 3
    assert summary['joint_error_mean_deg'] < 1e-9
    assert summary['camera_position_error_mean_mm'] < 1e-6
    assert summary['camera_translation_error_mean_mm'] < 1e-6
    assert summary['camera_rotation_error_mean_deg'] < 1e-5
    assert summary['latency_receive_to_publish_p50_ms'] == 11.0


def test_scoring_measures_known_errors_and_missing_frames():
    frames = [type('F', (), dict(stamp_ns=f.stamp_ns, joint_names=JOINTS,
                                 joint_angles_rad=f.joint_angles_rad, T_cam_base=f.T_cam_base))
              for f in _frames()]
    played, listened = _outputs(frames, joint_offset_rad=np.radians(10.0),
                                camera_shift_m=(0.03, -0.04, 0.0))
    listened['joint_states'].pop()          # the node published nothing for the last frame
    listened['tf'].pop()
    scores = score_frames(frames, played, listened)
    assert [s.published for s in scores] == [True, True, False]
    summary = summarize(scores)
    assert summary['frames_published'] == 2
    assert summary['joint_error_mean_deg'] == pytest.approx(10.0)
    # A pure shift of the camera by 50 mm in the base frame moves the base origin seen from the
    # camera by the same 50 mm (rotated): both translation errors are 50 mm.
    assert summary['camera_position_error_mean_mm'] == pytest.approx(50.0)
    assert summary['camera_translation_error_mean_mm'] == pytest.approx(50.0)
    assert summary['camera_rotation_error_mean_deg'] == pytest.approx(0.0, abs=1e-5)


def test_a_camera_rotation_error_moves_the_camera_position_but_not_the_translation():
    frame = type('F', (), dict(stamp_ns=5, joint_names=JOINTS, joint_angles_rad=np.zeros(7),
                               T_cam_base=_T([0, 0, 0], [0, 0, 2.0])))
    played, listened = _outputs([frame])
    T_wrong = _T([0, np.radians(10.0), 0], [0, 0, 2.0])     # right translation, 10 deg off
    listened['tf'][0].update(translation=list(T_wrong[:3, 3]),
                             rotation_xyzw=list(Rotation.from_matrix(T_wrong[:3, :3]).as_quat()))
    summary = summarize(score_frames([frame], played, listened))
    assert summary['camera_translation_error_mean_mm'] == pytest.approx(0.0, abs=1e-9)
    assert summary['camera_rotation_error_mean_deg'] == pytest.approx(10.0)
    assert summary['camera_position_error_mean_mm'] == pytest.approx(
        2000.0 * 2 * np.sin(np.radians(5.0)))


def test_stamps_round_trip_and_key():
    from types import SimpleNamespace

    from robotag_ros.stamps import ns_to_sec_nanosec, stamp_key, stamp_to_ns
    stamp_ns = 1_700_000_123_000_000_042
    sec, nanosec = ns_to_sec_nanosec(stamp_ns)
    assert (sec, nanosec) == (1_700_000_123, 42)
    assert stamp_to_ns(SimpleNamespace(sec=sec, nanosec=nanosec)) == stamp_ns
    assert stamp_key(stamp_ns) == '1700000123.000000042'


@pytest.mark.parametrize('damage', ['missing', 'truncated', 'scrambled'])
def test_demo_refuses_a_missing_or_damaged_bag_with_one_line(tmp_path, capsys, damage):
    import shutil

    from robotag_ros.harness.demo import main as demo_main
    bag = tmp_path / 'bag'
    if damage != 'missing':
        shutil.copytree(sample_bag_path(), bag)
        mcap = next(bag.glob('*.mcap'))
        data = bytearray(mcap.read_bytes())
        if damage == 'truncated':
            data = data[:len(data) // 6]
        else:   # bytes overwritten inside the file, its end intact
            middle = len(data) // 3
            data[middle:middle + 20000] = bytes((b * 7 + 3) % 256
                                                for b in data[middle:middle + 20000])
        mcap.write_bytes(bytes(data))
    assert demo_main(['--bag', str(bag), '--out', str(tmp_path / 'out')]) == 2
    captured = capsys.readouterr()
    (line,) = captured.err.strip().splitlines()
    assert line.startswith('demo: error: ') and str(bag) in line, captured.err
    assert not (tmp_path / 'out').exists()
