"""DREAM writer <-> reader: round trip, projection consistency, determinism, resume, corruption."""
import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from robotag_ros.data.synthetic.dr_config import DRConfig, load_dr_config
from robotag_ros.data.dream.dataset import DreamDataset
from robotag_ros.data.dream.format import R_NORMAL_UE
from robotag_ros.data.synthetic.frame_generator import SyntheticFrameGenerator
from robotag_ros.data.cli import contact_sheet_main, main as synth_main
from robotag_ros.data.synthetic.set_generator import generate_set, set_intrinsics
from robotag_ros.robot import load_robot

HEIGHT, WIDTH = 96, 128
SEED, NUM = 5, 4
SAMPLE_DIR = Path(__file__).parent / 'data' / 'dream_panda_sample'


@pytest.fixture(scope='module')
def robot():
    return load_robot('panda')


@pytest.fixture(scope='module')
def synth_set(tmp_path_factory):
    out = tmp_path_factory.mktemp('synth') / 'panda_synth'
    written = generate_set('panda', out, NUM, SEED, DRConfig(), HEIGHT, WIDTH, progress=False)
    assert written == NUM
    return out


def test_round_trip_writer_reader(robot, synth_set):
    generator = SyntheticFrameGenerator(robot, DRConfig(), HEIGHT, WIDTH,
                                        K=set_intrinsics(DRConfig(), HEIGHT, WIDTH, SEED))
    # Joints are drawn between the robot YAML's limits exactly (Franka's, for the Panda).
    assert generator.joint_lower.tolist() == [j.lower for j in robot.description.joints]
    assert generator.joint_upper.tolist() == [j.upper for j in robot.description.joints]
    assert generator.joint_upper[3] == -0.0698
    try:
        frames = [generator.generate(SEED, i) for i in range(NUM)]
    finally:
        generator.close()
    dataset = DreamDataset(synth_set, robot)
    assert len(dataset) == NUM and dataset.location_unit == 'cm' and dataset.num_skipped == 0
    for index, frame in enumerate(frames):
        sample = dataset[index]
        assert sample['image'].shape == (3, HEIGHT, WIDTH)
        np.testing.assert_allclose(sample['joint_angles'], frame.joint_angles_rad, atol=1e-6)
        np.testing.assert_allclose(sample['keypoints_3d'], frame.keypoints_3d_m, atol=1e-6)
        np.testing.assert_allclose(sample['keypoints_2d'], frame.keypoints_2d_px, atol=1e-4)
        np.testing.assert_allclose(sample['K'], frame.K, rtol=1e-6, atol=1e-4)
        np.testing.assert_allclose(sample['T_cam_base'], frame.T_cam_base, atol=1e-5)
        for key in ('joint_angles', 'T_cam_base', 'keypoints_3d', 'mask', 'depth'):
            assert bool(sample[f'has_{key}'])
        assert torch.equal(sample['mask'][0] > 0.5, torch.from_numpy(frame.robot_mask))
        np.testing.assert_allclose(sample['depth'][0], frame.depth_m, atol=6e-4)


def test_json_projected_keypoints_match_locations_and_pose(robot, synth_set):
    for json_path in sorted(synth_set.glob('0*.json')):
        annotation = json.loads(json_path.read_text())
        intr = annotation['camera_data']['intrinsics']
        K = np.array([[intr['fx'], 0, intr['cx']], [0, intr['fy'], intr['cy']], [0, 0, 1]])
        obj = annotation['objects'][0]
        assert obj['class'] == 'panda'
        assert [k['name'] for k in obj['keypoints']] == robot.keypoint_names
        locations = np.array([k['location'] for k in obj['keypoints']])  # cm, camera frame
        uvw = locations @ K.T
        projected = uvw[:, :2] / uvw[:, 2:]
        stored = np.array([k['projected_location'] for k in obj['keypoints']])
        np.testing.assert_allclose(projected, stored, atol=1e-3)
        # The base keypoint (panda_link0 origin) is the object location.
        np.testing.assert_allclose(locations[0], obj['location'], atol=1e-5)
        # World frame = base frame: camera pose in the world and base pose in the camera (both in
        # the Unreal-axes convention readers undo with R_NORMAL_UE) compose to the identity.
        camera = annotation['camera_data']
        R_world_cam = Rotation.from_quat(camera['quaternion_xyzw_worldframe']).as_matrix()
        R_cam_base = Rotation.from_quat(obj['quaternion_xyzw']).as_matrix() @ R_NORMAL_UE
        np.testing.assert_allclose((R_world_cam @ R_NORMAL_UE) @ R_cam_base, np.eye(3), atol=1e-5)
        t_world_base = (R_world_cam @ R_NORMAL_UE) @ np.array(obj['location']) + np.array(
            camera['location_worldframe'])
        np.testing.assert_allclose(t_world_base, np.zeros(3), atol=1e-3)
        # pose_transform as CtRNet turns it into T_cam_base (transpose, cm -> m, flip x/y rows,
        # flip column 1).
        T_ctrnet = np.array(obj['pose_transform']).T
        T_ctrnet[:3, -1] *= 0.01
        T_ctrnet[0, :] *= -1
        T_ctrnet[1, :] *= -1
        T_ctrnet[:3, 1] *= -1
        np.testing.assert_allclose(T_ctrnet[:3, :3], R_cam_base, atol=1e-5)
        np.testing.assert_allclose(T_ctrnet[:3, 3], np.array(obj['location']) / 100, atol=1e-7)
        names = [j['name'] for j in annotation['sim_state']['joints']]
        assert names == [f'panda/{j}' for j in robot.joint_names]


def _settings_K(folder):
    intrinsics = json.loads((folder / '_camera_settings.json').read_text())[
        'camera_settings'][0]['intrinsic_settings']
    fx, fy, cx, cy = (intrinsics[key] for key in ('fx', 'fy', 'cx', 'cy'))
    return np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]])


def _max_reprojection_px(folder, K):
    worst = 0.0
    for json_path in sorted(folder.glob('[0-9]*.json')):
        keypoints = json.loads(json_path.read_text())['objects'][0]['keypoints']
        locations = np.array([k['location'] for k in keypoints])
        stored = np.array([k['projected_location'] for k in keypoints])
        uvw = locations @ K.T
        worst = max(worst, float(np.abs(uvw[:, :2] / uvw[:, 2:] - stored).max()))
    return worst


def test_camera_settings_K_reprojects_every_frame_and_joints_stay_in_limits(robot, synth_set):
    """What DREAM's and Holistic's loaders assume: one K, _camera_settings.json's, per folder."""
    assert _max_reprojection_px(synth_set, _settings_K(synth_set)) < 0.5
    lower = np.array([joint.lower for joint in robot.description.joints])   # the YAML's
    upper = np.array([joint.upper for joint in robot.description.joints])
    for json_path in sorted(synth_set.glob('[0-9]*.json')):
        joints = json.loads(json_path.read_text())['sim_state']['joints']
        angles = np.array([j['position'] for j in joints])
        assert ((angles >= lower) & (angles <= upper)).all(), json_path.name
    # Another seed, another lens: intrinsics vary between sets, never within one.
    other = DRConfig()
    assert not np.allclose(set_intrinsics(other, HEIGHT, WIDTH, SEED),
                           set_intrinsics(other, HEIGHT, WIDTH, SEED + 1))


def test_one_image_per_frame_with_the_extension_dreams_loader_picks(synth_set):
    """DREAM takes the image extension that most names in the folder end with (png on a tie);
    Holistic globs *.jpg. Masks and depth (on by default) must not tip that count."""
    assert DRConfig().save_mask and DRConfig().save_depth
    names = os.listdir(synth_set)
    frames = sorted(n[:-len('.json')] for n in names if n.endswith('.json') and n[0].isdigit())
    assert len(frames) == NUM
    counts = {ext: sum(n.endswith(ext) for n in names) for ext in ('png', 'jpg')}
    assert counts['jpg'] > counts['png'], counts                   # DREAM picks jpg
    images = sorted(n for n in names if n.endswith(('png', 'jpg')))
    assert images == [f'{frame}.rgb.jpg' for frame in frames]      # exactly one per frame
    assert sorted(p.name for p in synth_set.glob('*.jpg')) == images   # what Holistic reads
    extras = sorted(os.listdir(synth_set / 'robotag_extras'))
    assert extras == sorted([f'{f}.robot_mask.png' for f in frames]
                            + [f'{f}.depth_mm.png' for f in frames])


def test_folders_of_the_older_layout_still_load(robot, synth_set, tmp_path):
    """Older robotag-synth folders: extras beside the frames, a K per frame in the JSON."""
    old = tmp_path / 'old_layout'
    shutil.copytree(synth_set, old)
    for extra in (old / 'robotag_extras').iterdir():
        extra.rename(old / extra.name)
    (old / 'robotag_extras').rmdir()
    frame_K = None
    for json_path in sorted(old.glob('[0-9]*.json')):   # a K of its own per frame, as before
        annotation = json.loads(json_path.read_text())
        scale = 1.0 + 0.05 * int(json_path.name[:6])
        for keypoint in annotation['objects'][0]['keypoints']:
            u, v = keypoint['projected_location']
            intrinsics = annotation['camera_data']['intrinsics']
            keypoint['projected_location'] = [intrinsics['cx'] + scale * (u - intrinsics['cx']),
                                              intrinsics['cy'] + scale * (v - intrinsics['cy'])]
        intrinsics['fx'] *= scale
        intrinsics['fy'] *= scale
        frame_K = intrinsics
        json_path.write_text(json.dumps(annotation))
    new, older = DreamDataset(synth_set, robot), DreamDataset(old, robot)
    assert len(older) == NUM and older.num_skipped == 0
    for index in range(NUM):
        a, b = new[index], older[index]
        assert bool(b['has_mask']) and bool(b['has_depth'])
        assert torch.equal(a['mask'], b['mask']) and torch.equal(a['depth'], b['depth'])
        uvw = b['keypoints_3d'] @ b['K'].T          # each frame's own K labels it
        np.testing.assert_allclose(uvw[:, :2] / uvw[:, 2:], b['keypoints_2d'], atol=1e-3)
    assert float(older[NUM - 1]['K'][0, 0]) == pytest.approx(frame_K['fx'], rel=1e-6)


def test_intrinsics_px_is_the_K_of_the_set(tmp_path, capsys):
    config = DRConfig()
    config.camera.intrinsics_px = [101.5, 99.0, 61.0, 47.5]
    out = tmp_path / 'known_camera'
    generate_set('panda', out, 2, SEED, config, HEIGHT, WIDTH, progress=False)
    K = _settings_K(out)
    np.testing.assert_array_equal(K, [[101.5, 0, 61.0], [0, 99.0, 47.5], [0, 0, 1]])
    assert _max_reprojection_px(out, K) < 0.5
    config.camera.intrinsics_px = [0.0, 99.0, 61.0, 47.5]
    with pytest.raises(ValueError, match='intrinsics_px'):
        set_intrinsics(config, HEIGHT, WIDTH, SEED)
    bad_config = tmp_path / 'bad.yaml'
    bad_config.write_text('camera: {intrinsics_px: [0.0, 99.0, 61.0, 47.5]}\n')
    assert synth_main(['--robot', 'panda', '--out', str(tmp_path / 'never'), '--num', '1',
                       '--config', str(bad_config), '--no-progress']) == 2
    assert 'intrinsics_px' in capsys.readouterr().err
    assert not (tmp_path / 'never').exists()


@pytest.mark.parametrize('size, expected', [
    ('100000x100000', "--size '100000x100000': each side must be 16 to 4096 pixels"),
    ('8x400', "--size '8x400': each side must be 16 to 4096 pixels"),
    ('400', "--size '400': expected WIDTHxHEIGHT, e.g. 400x400")])
def test_synth_refuses_a_size_it_cannot_render_before_any_folder(tmp_path, capsys, size,
                                                                 expected):
    assert synth_main(['--robot', 'panda', '--out', str(tmp_path / 'never'), '--num', '1',
                       '--size', size, '--no-progress']) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [f'robotag-synth: error: {expected}'], err
    assert not (tmp_path / 'never').exists()


def test_a_failing_render_leaves_no_half_made_folder(tmp_path, monkeypatch):
    from robotag_ros.data.synthetic import set_generator

    def failing_render(frame_index):
        raise RuntimeError('the renderer failed')
    monkeypatch.setattr(set_generator, '_make_frame', failing_render)
    with pytest.raises(RuntimeError, match='the renderer failed'):
        generate_set('panda', tmp_path / 'new_set', 2, SEED, DRConfig(), HEIGHT, WIDTH,
                     progress=False)
    assert not (tmp_path / 'new_set').exists()
    # A folder that was there before (a run being resumed) stays, with what it held.
    (tmp_path / 'resumed').mkdir()
    (tmp_path / 'resumed' / 'keep.txt').write_text('earlier work')
    with pytest.raises(RuntimeError, match='the renderer failed'):
        generate_set('panda', tmp_path / 'resumed', 2, SEED, DRConfig(), HEIGHT, WIDTH,
                     progress=False)
    assert (tmp_path / 'resumed' / 'keep.txt').read_text() == 'earlier work'


def test_folder_of_an_older_layout_is_not_resumed_with_the_new_one(synth_set, tmp_path, capsys):
    import yaml
    old = tmp_path / 'old'
    shutil.copytree(synth_set, old)
    record = yaml.safe_load((old / '_robotag_synth.yaml').read_text())
    del record['layout'], record['intrinsics_px']
    (old / '_robotag_synth.yaml').write_text(yaml.safe_dump(record, sort_keys=False))
    before = (old / '_camera_settings.json').read_bytes()
    with pytest.raises(SystemExit, match='older robotag-synth'):
        generate_set('panda', old, NUM + 1, SEED, DRConfig(), HEIGHT, WIDTH, progress=False)
    assert (old / '_camera_settings.json').read_bytes() == before
    assert not (old / f'{NUM:06d}.json').exists()


def test_same_seed_same_bytes_across_shards_and_resume(synth_set, tmp_path):
    other = tmp_path / 'sharded'
    for shard, workers in (('1/2', '2'), ('0/2', '1')):  # shard 1 by two worker processes
        assert synth_main(['--robot', 'panda', '--out', str(other), '--num', str(NUM), '--seed',
                           str(SEED), '--size', f'{WIDTH}x{HEIGHT}', '--shard', shard,
                           '--workers', workers, '--no-progress']) == 0
    for name in [f'{i:06d}.json' for i in range(NUM)] + ['_camera_settings.json']:
        assert (other / name).read_bytes() == (synth_set / name).read_bytes(), name
    assert (other / '000001.rgb.jpg').read_bytes() == (synth_set / '000001.rgb.jpg').read_bytes()
    # Resume: nothing left to do, finished frames untouched.
    before = (other / '000002.json').stat().st_mtime_ns
    assert generate_set('panda', other, NUM, SEED, DRConfig(), HEIGHT, WIDTH,
                        progress=False) == 0
    assert (other / '000002.json').stat().st_mtime_ns == before
    # A different seed gives different frames.
    different = tmp_path / 'other_seed'
    generate_set('panda', different, 1, SEED + 1, DRConfig(), HEIGHT, WIDTH, progress=False)
    assert (different / '000000.json').read_bytes() != (synth_set / '000000.json').read_bytes()


def test_corrupt_frames_are_skipped_and_counted(robot, synth_set, tmp_path):
    broken = tmp_path / 'broken'
    shutil.copytree(synth_set, broken)
    (broken / '000000.json').write_text('{"objects": [')                      # bad JSON
    jpeg = (broken / '000001.rgb.jpg').read_bytes()
    (broken / '000001.rgb.jpg').write_bytes(jpeg[:len(jpeg) // 2])            # truncated image
    annotation = json.loads((broken / '000002.json').read_text())
    annotation['objects'][0]['keypoints'].pop(0)                      # a DREAM keypoint short
    (broken / '000002.json').write_text(json.dumps(annotation))
    with pytest.warns(UserWarning) as caught:
        dataset = DreamDataset(broken, robot)
    messages = ' '.join(str(w.message) for w in caught)
    assert '000000.json' in messages and '000001.rgb.jpg' in messages
    assert '000002.json' in messages
    assert len(dataset) == NUM - 3 and dataset.num_skipped == 3
    # A frame that breaks after the scan is replaced at load time and counted, never raised.
    (broken / '000003.rgb.jpg').write_bytes(b'\xff\xd8 not a jpeg \xff\xd9')
    copy = DreamDataset(synth_set, robot)
    copy.frames[3]['image_path'] = broken / '000003.rgb.jpg'
    with pytest.warns(UserWarning, match='000003.rgb.jpg'):
        sample = copy[3]
    assert sample['frame'] == '000000.json' and len(copy.failed_at_load) == 1


def test_reader_loads_real_style_sample_in_metres(robot):
    dataset = DreamDataset(SAMPLE_DIR, robot, image_size=(48, 64))
    assert len(dataset) == 3 and dataset.location_unit == 'm' and dataset.num_skipped == 0
    sample = dataset[0]
    assert sample['image'].shape == (3, 48, 64)
    assert not bool(sample['has_joint_angles']) and not bool(sample['has_T_cam_base'])
    assert not bool(sample['has_mask'])
    assert bool(dataset[2]['has_joint_angles'])
    # Resizing by 1/2 halves K and the pixels; 3D keypoints (metres) stay put and still project.
    # A real set has DREAM's keypoints only: ours are marked invalid (no joints to place them).
    valid = sample['keypoints_valid']
    assert valid[:7].all() and not valid[7:].any()
    uvw = sample['keypoints_3d'][valid] @ sample['K'].T
    np.testing.assert_allclose(uvw[:, :2] / uvw[:, 2:], sample['keypoints_2d'][valid], atol=0.05)
    assert 0.2 < float(sample['keypoints_3d'][valid][:, 2].mean()) < 5.0


def test_unit_override_and_augmentation_keep_geometry(robot, synth_set, tmp_path):
    millimetres = tmp_path / 'mm'
    shutil.copytree(synth_set, millimetres)
    for json_path in millimetres.glob('0*.json'):
        annotation = json.loads(json_path.read_text())
        for keypoint in annotation['objects'][0]['keypoints']:
            keypoint['location'] = [10.0 * v for v in keypoint['location']]
        json_path.write_text(json.dumps(annotation))
    with pytest.raises(ValueError, match='neither metres nor centimetres'):
        DreamDataset(millimetres, robot)
    with pytest.warns(UserWarning), pytest.raises(ValueError, match='none of its 4 frames'):
        DreamDataset(synth_set, load_robot('kuka_iiwa'))  # the wrong robot for this folder
    forced = DreamDataset(synth_set, robot, location_unit='m')
    assert forced.location_unit == 'm'
    augmented = DreamDataset(synth_set, robot, image_size=(64, 80), augment=True, seed=3)
    sample = augmented[1]
    assert sample['image'].shape == (3, 64, 80)
    uvw = sample['keypoints_3d'] @ sample['K'].T
    np.testing.assert_allclose(uvw[:, :2] / uvw[:, 2:], sample['keypoints_2d'], atol=0.05)
    assert torch.equal(augmented[1]['image'], sample['image'])  # seeded per (epoch, index)
    augmented.set_epoch(1)
    assert not torch.equal(augmented[1]['image'], sample['image'])


def test_lower_resolution_keeps_geometry_and_removes_detail(robot, synth_set):
    from robotag_ros.data.image_aug import lower_resolution
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    coarse = lower_resolution(image, 0.5)
    assert coarse.shape == image.shape and np.array_equal(lower_resolution(image, 1.0), image)
    # area averaging then interpolation: neighbouring pixels come closer together
    assert np.abs(np.diff(coarse.astype(int), axis=1)).mean() \
        < 0.6 * np.abs(np.diff(image.astype(int), axis=1)).mean()
    # a bright square stays where it was (pixel centres aligned), only its edges soften
    square = np.zeros((64, 64, 3), np.uint8)
    square[20:40, 24:44] = 255
    moments = cv2.moments(lower_resolution(square, 0.4)[..., 0].astype(np.float32))
    np.testing.assert_allclose([moments['m10'] / moments['m00'], moments['m01'] / moments['m00']],
                               [33.5, 29.5], atol=0.3)
    plain = DreamDataset(synth_set, robot, image_size=(64, 80), augment=True, seed=3)
    jittered = DreamDataset(synth_set, robot, image_size=(64, 80), augment=True, seed=3,
                            resolution_jitter_prob=1.0, resolution_min_scale=0.3)
    a, b = plain[1], jittered[1]
    assert torch.equal(a['keypoints_2d'], b['keypoints_2d']) and torch.equal(a['K'], b['K'])
    assert not torch.equal(a['image'], b['image'])
    with pytest.raises(ValueError, match='resolution_min_scale'):
        DreamDataset(synth_set, robot, resolution_min_scale=0.0)


def test_shifted_config_loads_and_differs():
    configs = Path(__file__).parents[1] / 'config/synth'
    collage = load_dr_config(configs / 'dr_collage.yaml')
    default = load_dr_config(configs / 'dr_default.yaml')
    shifted = load_dr_config(configs / 'dr_shifted.yaml')
    # The dataclass defaults are the collage domain.
    assert collage == DRConfig(name='dr_collage')
    assert default.room != collage.room and default.lights.shadows
    assert shifted != default and shifted != collage
    from robotag_ros.config_merge import ConfigError, merge_into
    with pytest.raises(ConfigError, match="x.camera: unknown key 'nope'"):
        merge_into(DRConfig(), {'camera': {'nope': 1}}, 'x')


def test_contact_sheet_draws_keypoints(synth_set, tmp_path):
    import cv2
    from robotag_ros.data.dream.contact_sheet import draw_frame
    out = tmp_path / 'sheet.png'
    assert contact_sheet_main([str(synth_set), str(out), '--n', '4', '--tile', '64']) == 0
    sheet = cv2.imread(str(out))
    assert sheet.shape == (2 * 48, 2 * 64, 3)
    blank = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    keypoints = json.loads((synth_set / '000000.json').read_text())['objects'][0]['keypoints']
    drawn = draw_frame(blank, keypoints)
    u, v = keypoints[-1]['projected_location']
    if 0 <= u < WIDTH and 0 <= v < HEIGHT:
        assert drawn[int(v), int(u)].any()
    assert drawn.any()


def test_keypoints_and_joints_are_matched_by_name_not_position(robot, synth_set, tmp_path):
    shuffled = tmp_path / 'shuffled'
    shuffled.mkdir()
    for name in ('_camera_settings.json', '000000.json', '000000.rgb.jpg'):
        shutil.copy(synth_set / name, shuffled / name)
    annotation = json.loads((shuffled / '000000.json').read_text())
    annotation['objects'][0]['keypoints'].reverse()
    annotation['sim_state']['joints'].reverse()
    (shuffled / '000000.json').write_text(json.dumps(annotation))
    original, reordered = DreamDataset(synth_set, robot)[0], DreamDataset(shuffled, robot)[0]
    for key in ('keypoints_2d', 'keypoints_3d', 'joint_angles', 'K', 'T_cam_base'):
        assert torch.equal(original[key], reordered[key]), key


def test_atomic_writers_leave_the_old_file_whole_on_failure(tmp_path):
    from robotag_ros.atomic_io import atomic_write_image, atomic_write_json
    target = atomic_write_json(tmp_path / 'a.json', {'b': 1, 'a': [1.5]})
    assert target.read_text() == '{\n "b": 1,\n "a": [\n  1.5\n ]\n}\n'
    with pytest.raises(TypeError):
        atomic_write_json(target, {'not json': object()})
    assert json.loads(target.read_text()) == {'b': 1, 'a': [1.5]}
    image = np.zeros((4, 6, 3), np.uint8)
    image[..., 0] = 200   # red in RGB
    png = atomic_write_image(tmp_path / 'x.png', image)
    assert cv2.imread(str(png))[0, 0].tolist() == [0, 0, 200]   # BGR on disk
    with pytest.raises(OSError):
        atomic_write_image(tmp_path / 'x.unknown-format', image)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['a.json', 'x.png']
