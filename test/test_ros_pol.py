"""Proof of life: the bundled sample bag through the REAL estimator node, in real processes.

One node process runs from the ``estimator`` console script with config/estimator.yaml and the
bundled model (models/panda_default); a listener process records joint_states, /tf,
~/camera_pose, ~/debug_image and /diagnostics. First a driver process feeds every kind of bad
input the real estimator can be given (NaNs and exceptions cannot be forced in a real model: the
fake-estimator test covers those), each followed by good frames that must be answered; then the
sample player plays test/data/panda_sample_bag (Image + CameraInfo with the bag's stamps) and the
outputs are checked against the bag's ground truth: stamps, frame names, joint names and values.
DDS stays on this machine (shared memory only, a private ROS_DOMAIN_ID). Skipped only when the
bundled model is absent.
"""
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip('rclpy', reason='rclpy not installed: run scripts/install_ros.sh')
pytest.importorskip('tf2_msgs.msg', reason='tf2_msgs not built: run scripts/install_ros.sh')

from robotag_ros.data.bags.sample_bag import read_sample_bag  # noqa: E402
from robotag_ros.bundled import (default_model_path, has_default_model,  # noqa: E402
                                 sample_bag_path)
from robotag_ros.harness.sample_run import NodeSession, score_frames, summarize  # noqa: E402
from robotag_ros.stamps import stamp_key  # noqa: E402

pytestmark = pytest.mark.skipif(
    not has_default_model(),
    reason=f'bundled model {default_model_path()}.{{safetensors,yaml}} is absent')

REPO = Path(__file__).resolve().parents[1]
HARNESS = REPO / 'test' / 'ros_harness.py'
CONFIG = yaml.safe_load((REPO / 'config' / 'estimator.yaml').read_text())
PARAMS = CONFIG['estimator']['ros__parameters']
CAMERA_NAMESPACE = '/camera/color'

# Regression bounds for the bundled model on the sample (over all frames and joints), about 1.4x
# what it measured here (2026-12-06, the seven-phase model, whole trunk trained: mean 25.5 deg,
# 56.0 mm, 16.3 deg; median 6.5 deg, 27.5 mm, 4.4 deg; the six-phase model's means were
# 22.5 deg, 66.2 mm, 21.0 deg, its medians 5.8 deg, 38.8 mm, 5.7 deg). The sample is a
# collage-domain recording; on its 30 frames of one sequence a few mirror poses and joint 7's
# half-turn make the means, so the medians are bounded too. The bundled model is still far from
# the accuracy target (see README). These bounds guard the node's plumbing and the model's level;
# test_node_matches_the_estimator_run_offline checks the node exactly. Tighten them when a
# better default model lands. Definitions as robotag_ros.metrics.
MAX_MEAN_JOINT_ERROR_DEG = 35.7
MAX_MEAN_CAMERA_TRANSLATION_ERROR_M = 0.078
MAX_MEAN_CAMERA_ROTATION_ERROR_DEG = 22.8
MAX_MEDIAN_JOINT_ERROR_DEG = 9.1
MAX_MEDIAN_CAMERA_TRANSLATION_ERROR_M = 0.039
MAX_MEDIAN_CAMERA_ROTATION_ERROR_DEG = 6.2
# The node must publish what the library computes on the same frame (the image is converted,
# resized and run by the same code; only float round-off may differ).
MAX_NODE_VS_OFFLINE_JOINT_DIFFERENCE_RAD = 1e-3
MAX_NODE_VS_OFFLINE_TRANSLATION_DIFFERENCE_M = 1e-3

BAD_FRAME_ID = 'pol_bad_input_camera'
K = [[80.0, 0.0, 32.0], [0.0, 80.0, 24.0], [0.0, 0.0, 1.0]]
GOOD_INFO = {'K': K, 'width': 64, 'height': 48}
# Bad input the real estimator can meet, each followed by a good frame that must be answered:
# (name, frame fields for test/ros_harness.py, 'ok' or the node's drop cause).
BAD_INPUT = [
    ('image before any camera_info', {}, 'no_camera_info'),
    ('camera_info with K all zeros', {'camera_info': {'K': [[0.0] * 3] * 3, 'width': 64,
                                                      'height': 48}}, 'no_camera_info'),
    ('good rgb8', {'camera_info': GOOD_INFO}, 'ok'),
    ('16-bit depth', {'encoding': '16UC1'}, 'bad_image'),
    ('good bgra8', {'encoding': 'bgra8'}, 'ok'),
    ('unknown encoding', {'encoding': 'yuv422'}, 'bad_image'),
    ('good mono8', {'encoding': 'mono8'}, 'ok'),
    ('data shorter than height x step', {'truncate_bytes': 100}, 'bad_image'),
    ('good bgr8', {'encoding': 'bgr8'}, 'ok'),
    ('camera_info for another image size', {'camera_info': {'K': K, 'width': 640,
                                                            'height': 480}},
     'camera_info_mismatch'),
    ('good again', {'camera_info': GOOD_INFO}, 'ok'),
]


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    """One node: bad input first, then the whole sample bag; return everything observed."""
    tmp = tmp_path_factory.mktemp('ros_pol')
    scenario = {'frame_id': BAD_FRAME_ID, 'image_topic': f'{CAMERA_NAMESPACE}/image_raw',
                'camera_info_topic': f'{CAMERA_NAMESPACE}/camera_info',
                'answer_timeout_s': 20.0, 'discovery_timeout_s': 60.0,
                'frames': [dict(index=i, **fields) for i, (_, fields, _) in enumerate(BAD_INPUT)]}
    (tmp / 'scenario.json').write_text(json.dumps(scenario))
    bag = sample_bag_path()
    # model_path '' in config/estimator.yaml: the node finds the bundled model itself.
    session = NodeSession(tmp, domain_id=20 + (os.getpid() + 17) % 80,
                          camera_namespace=CAMERA_NAMESPACE, overlay_dir=tmp / 'overlays')
    with session:
        driven = session.run([sys.executable, str(HARNESS), 'drive', str(tmp / 'scenario.json'),
                              str(tmp / 'driven.json')], timeout_s=300)
        assert driven.returncode == 0, session.node_log()
        node_alive_after_bad_input = session.node.poll() is None
        played = session.play(bag, answer_timeout_s=20.0)
        listened = session.stop()
    return {'driven': json.loads((tmp / 'driven.json').read_text())['frames'],
            'played': played, 'listened': listened, 'command': session.command,
            'node_alive_after_bad_input': node_alive_after_bad_input,
            'node_alive_after_play': session.node_alive_after_play,
            'node_log': session.node_log(), 'sample': read_sample_bag(bag)}


def test_node_runs_from_the_console_script_with_the_config_file(run):
    script = shutil.which('estimator', path=str(Path(sys.executable).parent))
    if script is not None:
        assert run['command'][0] == script
        arguments = run['command'][1:]
    else:   # not installed (e.g. a bare checkout on PYTHONPATH): the module itself
        assert run['command'][:3] == [sys.executable, '-m', 'robotag_ros.ros.estimator_node']
        arguments = run['command'][3:]
    assert arguments[:3] == ['--ros-args', '--params-file',
                             str(REPO / 'config' / 'estimator.yaml')]
    assert 'model_path' not in ' '.join(run['command'])    # the bundled default, found by the node
    assert str(default_model_path()) in run['node_log']


def test_real_estimator_survives_bad_input_and_answers_the_next_good_frame(run):
    assert run['node_alive_after_bad_input'], run['node_log']
    for frame, (name, _, expected) in zip(run['driven'], BAD_INPUT):
        answer = frame['answer']
        assert answer is not None, f'{name}: no diagnostics answer\n{run["node_log"]}'
        if expected == 'ok':
            assert (answer['level'], answer['message']) == (0, 'estimate published'), name
        else:
            assert answer['level'] == 1, name
            assert answer['values']['drop_cause'] == expected, (name, answer['message'])
    good = {frame['stamp'] for frame, (_, _, expected) in zip(run['driven'], BAD_INPUT)
            if expected == 'ok'}
    dropped = {frame['stamp'] for frame in run['driven']} - good
    published = {m['stamp'] for m in run['listened']['joint_states']}
    assert good <= published
    assert not dropped & published, f'joint_states for dropped frames: {dropped & published}'


def test_every_sample_frame_is_answered_with_outputs_stamped_like_its_image(run):
    assert run['node_alive_after_play'], run['node_log']
    sample_stamps = [stamp_key(f.stamp_ns) for f in run['sample']]
    assert [r['stamp'] for r in run['played']] == sample_stamps
    assert all(r['answer'] and r['answer']['level'] == 0 for r in run['played']), \
        [r['answer'] and r['answer']['message'] for r in run['played']]
    listened = run['listened']
    for topic in ('joint_states', 'tf', 'camera_pose', 'debug_image'):
        stamps = [m['stamp'] for m in listened[topic] if m['stamp'] in set(sample_stamps)]
        assert sorted(stamps) == sample_stamps, topic   # once each, no stamp invented


def test_frame_names_follow_the_config_and_the_image(run):
    assert PARAMS['camera_frame'] == '' and PARAMS['base_frame'] == ''
    assert PARAMS['tf_parent'] == 'camera' and PARAMS['publish_tf'] is True
    sample = run['sample'][0]
    camera_frame = sample.frame_id           # '' = the image's frame_id
    base_frame = sample.base_frame           # '' = the robot description's base frame
    assert (camera_frame, base_frame) == ('camera_color_optical_frame', 'panda_link0')
    stamps = {stamp_key(f.stamp_ns) for f in run['sample']}
    transforms = [m for m in run['listened']['tf'] if m['stamp'] in stamps]
    assert {(m['parent'], m['child']) for m in transforms} == {(camera_frame, base_frame)}
    poses = [m for m in run['listened']['camera_pose'] if m['stamp'] in stamps]
    assert {m['frame_id'] for m in poses} == {base_frame}
    overlays = [m for m in run['listened']['debug_image'] if m['stamp'] in stamps]
    assert {(m['frame_id'], m['width'], m['height'], m['encoding']) for m in overlays} == \
        {(camera_frame, 640, 480, 'rgb8')}


def test_joint_names_and_count_match_the_robot(run):
    names = run['sample'][0].joint_names
    assert names == [f'panda_joint{i}' for i in range(1, 8)]
    stamps = {stamp_key(f.stamp_ns) for f in run['sample']}
    messages = [m for m in run['listened']['joint_states'] if m['stamp'] in stamps]
    assert messages
    for message in messages:
        assert message['name'] == names
        assert len(message['position']) == 7 and np.isfinite(message['position']).all()


def test_estimates_are_within_tolerance_of_the_ground_truth(run):
    scores = score_frames(run['sample'], run['played'], run['listened'], tf_parent='camera')
    summary = summarize(scores)
    assert summary['frames_published'] == len(run['sample'])
    report = json.dumps({k: round(v, 2) if isinstance(v, float) else v
                         for k, v in summary.items()}, indent=1)
    assert summary['joint_error_mean_deg'] < MAX_MEAN_JOINT_ERROR_DEG, report
    assert summary['camera_translation_error_mean_mm'] < \
        1000 * MAX_MEAN_CAMERA_TRANSLATION_ERROR_M, report
    assert summary['camera_rotation_error_mean_deg'] < MAX_MEAN_CAMERA_ROTATION_ERROR_DEG, report
    assert summary['joint_error_median_deg'] < MAX_MEDIAN_JOINT_ERROR_DEG, report
    assert summary['camera_translation_error_median_mm'] < \
        1000 * MAX_MEDIAN_CAMERA_TRANSLATION_ERROR_M, report
    assert summary['camera_rotation_error_median_deg'] < MAX_MEDIAN_CAMERA_ROTATION_ERROR_DEG, \
        report


def test_node_matches_the_estimator_run_offline(run):
    """Every published joint vector and camera pose equals the Estimator's on the same image."""
    from robotag_ros.inference.estimate import estimate_recording
    from robotag_ros.estimator_factory import load_estimator
    # The node's default factory and backend ('auto'), so both run the same network graph.
    estimator = load_estimator(str(default_model_path()), backend='auto')
    joints = {m['stamp']: m for m in run['listened']['joint_states']}
    poses = {m['stamp']: m for m in run['listened']['camera_pose']}
    # As the node tracks (track_robot): each frame looks where the previous one found the
    # robot, the first (and any after an untrustworthy estimate) runs the first pass.
    estimates = estimate_recording(estimator, [f.image_rgb for f in run['sample']],
                                   [f.K for f in run['sample']], track=PARAMS['track_robot'],
                                   with_points=False)
    checked = 0
    for frame, offline in zip(run['sample'], estimates):
        key = stamp_key(frame.stamp_ns)
        published = dict(zip(joints[key]['name'], joints[key]['position']))
        difference = np.abs(np.array([published[n] for n in offline.joint_names])
                            - offline.joint_angles_rad)
        assert difference.max() < MAX_NODE_VS_OFFLINE_JOINT_DIFFERENCE_RAD, (key, difference)
        position = np.array(poses[key]['position'])   # camera in the base frame
        assert np.abs(position - offline.T_base_cam[:3, 3]).max() < \
            MAX_NODE_VS_OFFLINE_TRANSLATION_DIFFERENCE_M, (key, position)
        checked += 1
    assert checked == len(run['sample'])
