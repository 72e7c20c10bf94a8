"""The self-label benchmark: its default-look check shows the second camera's very views, and
its smoke run goes end to end."""
import json

import numpy as np
import pytest
from inference_fixtures import make_tiny_artifact

from benchmarks.finetune_shift import fixed_camera_config
from benchmarks.self_label_shift import SCENE_SEED, TEST_SEED, default_look_config, main
from robotag_ros.data.synthetic.dr_config import load_dr_config
from robotag_ros.data.synthetic.frame_generator import SyntheticFrameGenerator
from robotag_ros.robot import load_robot

HEIGHT, WIDTH = 120, 160


def _recording(robot, config_path):
    generator = SyntheticFrameGenerator(robot, load_dr_config(config_path), HEIGHT, WIDTH)
    try:
        return generator.generate_sequence(TEST_SEED, 3, scene_seed=SCENE_SEED)
    finally:
        generator.close()


def test_default_look_keeps_the_camera_and_motion_and_changes_the_pixels(tmp_path):
    robot = load_robot('panda')
    shifted = fixed_camera_config(tmp_path, WIDTH, HEIGHT, 42.0)
    shifted_frames = _recording(robot, shifted)
    default_frames = _recording(robot, default_look_config(shifted))
    for a, b in zip(shifted_frames, default_frames):
        np.testing.assert_allclose(a.T_cam_base, b.T_cam_base)
        np.testing.assert_allclose(a.joint_angles_rad, b.joint_angles_rad)
        np.testing.assert_allclose(a.K, b.K)
    # another look: robot colours, background and image effects all differ
    difference = np.abs(shifted_frames[0].rgb.astype(float) - default_frames[0].rgb)
    assert difference.mean() > 20.0


def test_self_label_benchmark_smoke_run_writes_its_keys(tmp_path):
    """The benchmark's --smoke-test (the pipeline end to end at tiny sizes) still runs and
    writes the before/after keys on both cameras, the default-look keys and the placements."""
    model = make_tiny_artifact(tmp_path / 'tiny', load_robot('panda'))
    result = tmp_path / 'result.json'
    assert main(['--model', str(model), '--smoke-test', '--shared-scene', '--device', 'cpu',
                 '--work-dir', str(tmp_path / 'work'), '--json', str(result)]) == 0
    keys = json.loads(result.read_text())
    assert keys['smoke_test_numbers_meaningless'] is True
    for name in ('add_auc', 'joint_error_j1_6_deg', 'same_camera_add_auc',
                 'other_camera_default_look_add_auc',
                 'other_camera_default_look_joint_error_j1_6_deg'):
        for when in ('before', 'after'):
            assert np.isfinite(keys[f'self_label_{name}_{when}'])
    assert 1.0 < keys['self_label_first_camera_distance_m'] < 4.0
    assert 1.0 < keys['self_label_other_camera_distance_m'] < 4.0
    assert keys['self_label_first_camera_distance_m'] != keys['self_label_other_camera_distance_m']


def test_self_label_benchmark_refuses_a_work_dir_of_another_second_camera(tmp_path):
    work = tmp_path / 'work'
    (work / 'recording_bag').mkdir(parents=True)
    (work / 'other_recording_seed.txt').write_text('4002\n')
    with pytest.raises(SystemExit, match='seed 4002, not 4008'):
        main(['--other-seed', '4008', '--work-dir', str(work), '--json',
              str(tmp_path / 'result.json')])
    assert not (tmp_path / 'result.json').exists()
