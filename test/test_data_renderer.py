"""Renderer and frame generator: pixels agree with our FK and intrinsics, masks cover keypoints."""
import mujoco
import numpy as np
import pytest
import torch

from robotag_ros.data.synthetic.camera_sampling import in_image, look_at, project
from robotag_ros.data.synthetic.dr_config import DRConfig
from robotag_ros.data.synthetic.renderer import MujocoRobotRenderer, SceneState
from robotag_ros.data.synthetic.frame_generator import SyntheticFrameGenerator
from robotag_ros.robot import load_robot

HEIGHT, WIDTH = 120, 160


@pytest.fixture(scope='module')
def robot():
    return load_robot('panda')


@pytest.fixture(scope='module')
def renderer(robot):
    renderer = MujocoRobotRenderer(robot, HEIGHT, WIDTH, max_distractors=2, max_lights=1)
    yield renderer
    renderer.close()


def test_projected_mesh_lands_where_the_renderer_draws_it(robot, renderer):
    """Off-centre principal point and fx != fy: each link's projected vertices bound its pixels."""
    q = torch.tensor([[0.3, -0.4, 0.2, -2.0, 0.1, 1.8, 0.5]], dtype=torch.float64)
    link_poses = {k: v[0].numpy() for k, v in robot.link_poses(q).items()}
    T_base_cam = look_at(np.array([1.4, 0.6, 0.7]), np.array([0.0, 0.0, 0.45]), roll_rad=0.2)
    K = np.array([[150.0, 0.0, 71.3], [0.0, 165.0, 66.8], [0.0, 0.0, 1.0]])
    output = renderer.render(SceneState(link_poses, T_base_cam, K))
    T_cam_base = np.linalg.inv(T_base_cam)
    segmentation = output.segmentation
    checked = 0
    for link_index, item in enumerate(robot.visual_meshes):
        # The link's geoms (one per material part) together draw its merged mesh.
        geom_ids = renderer._robot_geom[renderer.geom_link_index == link_index]
        rows, cols = np.nonzero(np.isin(segmentation, geom_ids))
        if len(rows) < 30:
            continue
        T = T_cam_base @ link_poses[item.link]
        vertices = item.mesh.vertices @ T[:3, :3].T + T[:3, 3]
        pixels = project(vertices, K)
        # Pixel (r, c) covers [c, c+1) x [r, r+1): drawn pixel centres lie inside the projection.
        assert cols.min() + 0.5 >= pixels[:, 0].min() - 1.0
        assert cols.max() + 0.5 <= pixels[:, 0].max() + 1.0
        assert rows.min() + 0.5 >= pixels[:, 1].min() - 1.0
        assert rows.max() + 0.5 <= pixels[:, 1].max() + 1.0
        assert abs(cols.min() - pixels[:, 0].min()) < 2.0
        assert abs(rows.max() - pixels[:, 1].max()) < 2.0
        checked += 1
    assert checked >= 5


def test_mask_covers_projected_keypoints_and_depth_is_metric(robot):
    config = DRConfig()
    config.distractors.count = [0, 0]  # nothing may hide a keypoint
    generator = SyntheticFrameGenerator(robot, config, HEIGHT, WIDTH)
    try:
        covered = total = 0
        for index in range(4):
            frame = generator.generate(seed=11, frame_index=index)
            visible = in_image(frame.keypoints_3d_m, frame.keypoints_2d_px, HEIGHT, WIDTH)
            mask = frame.robot_mask
            for (u, v), z, keep in zip(frame.keypoints_2d_px, frame.keypoints_3d_m[:, 2], visible):
                if not keep:
                    continue
                row, col = int(v), int(u)
                window = mask[max(row - 2, 0):row + 3, max(col - 2, 0):col + 3]
                total += 1
                covered += bool(window.any())
                # The surface seen at a keypoint is in front of its link origin, not behind.
                depth = frame.depth_m[max(row - 2, 0):row + 3, max(col - 2, 0):col + 3]
                if window.any():
                    assert depth[depth > 0].min() < z + 0.02
            assert frame.depth_m[mask].min() > 0.05
    finally:
        generator.close()
    assert total >= 12
    assert covered == total


def test_single_id_pass_matches_mujoco_renderer(robot, renderer):
    """Our one id-colour pass gives the segmentation and depth of mujoco.Renderer's two passes."""
    q = torch.tensor([[0.0, 0.3, 0.0, -1.5, 0.0, 1.5, 0.7]], dtype=torch.float64)
    link_poses = {k: v[0].numpy() for k, v in robot.link_poses(q).items()}
    T_base_cam = look_at(np.array([-1.2, 0.9, 0.5]), np.array([0.0, 0.0, 0.4]))
    K = np.array([[140.0, 0.0, 82.0], [0.0, 140.0, 57.0], [0.0, 0.0, 1.0]])
    output = renderer.render(SceneState(link_poses, T_base_cam, K))
    reference = mujoco.Renderer(renderer.model, HEIGHT, WIDTH)
    try:
        reference.update_scene(renderer.data, camera=renderer._camera_id)
        reference.enable_segmentation_rendering()
        segmentation = reference.render()[..., 0]
        reference.disable_segmentation_rendering()
        reference.enable_depth_rendering()
        depth = reference.render()
    finally:
        reference.close()
    assert output.robot_mask.sum() > 500
    assert (segmentation == output.segmentation).mean() > 0.999
    drawn = segmentation >= 0
    np.testing.assert_allclose(output.depth_m[drawn], depth[drawn], rtol=1e-5, atol=1e-5)


def test_a_sequence_is_one_camera_and_scene_with_the_arm_moving(robot):
    """generate_sequence (the self-labelling benchmark's recordings): camera, K and background
    fixed, joints moving smoothly, every frame labelled like a single frame and seen enough."""
    config = DRConfig()
    config.image.noise_prob = 0.0   # so that still background pixels compare
    generator = SyntheticFrameGenerator(robot, config, HEIGHT, WIDTH)
    try:
        frames = generator.generate_sequence(seed=5, num_frames=60)
    finally:
        generator.close()
    assert len(frames) == 60
    # 4 waypoints, 20 frames a segment: no jumps (the arm rests at the waypoints, so some
    # steps are tiny), and it moves
    steps = np.abs(np.diff(np.stack([f.joint_angles_rad for f in frames]), axis=0)).max(axis=1)
    assert steps.max() < 0.5 and np.median(steps) > 0.01
    background = ~np.any(np.stack([f.robot_mask for f in frames]), axis=0)
    for frame in frames:
        np.testing.assert_array_equal(frame.T_cam_base, frames[0].T_cam_base)
        np.testing.assert_array_equal(frame.K, frames[0].K)
        np.testing.assert_allclose(frame.keypoints_2d_px,
                                   project(frame.keypoints_3d_m, frame.K), atol=1e-9)
        visible = in_image(frame.keypoints_3d_m, frame.keypoints_2d_px, HEIGHT, WIDTH)
        assert visible.sum() >= config.camera.min_keypoints_in_image
    assert background.mean() > 0.5
    # the same background, up to the contrast jitter's pull to each frame's mean brightness
    # (and blur spreading the arm into a few pixels next to it)
    change = np.abs(frames[0].rgb[background].astype(int) - frames[-1].rgb[background])
    assert change.mean() < 1.0 and np.percentile(change, 99) <= 3


def test_a_shared_scene_seed_is_one_cell_seen_by_two_cameras(robot):
    """generate_sequence(scene_seed=...): the camera and motion follow ``seed``, the scene
    (here the 2D background behind everything) follows ``scene_seed``; without it a recording
    is its own scene."""
    config = DRConfig()
    config.image.noise_prob = 0.0
    config.image.blur_prob = 0.0
    config.distractors.count = [0, 0]
    generator = SyntheticFrameGenerator(robot, config, HEIGHT, WIDTH)
    try:
        first = generator.generate_sequence(seed=5, num_frames=2, scene_seed=77)[0]
        second = generator.generate_sequence(seed=6, num_frames=2, scene_seed=77)[0]
        own = generator.generate_sequence(seed=6, num_frames=2)[0]
    finally:
        generator.close()
    assert not np.allclose(first.T_cam_base, second.T_cam_base)
    np.testing.assert_array_equal(second.T_cam_base, own.T_cam_base)
    empty = ~(first.robot_mask | second.robot_mask | own.robot_mask)
    same_cell = np.abs(first.rgb[empty].astype(int) - second.rgb[empty]).mean()
    other_cell = np.abs(first.rgb[empty].astype(int) - own.rgb[empty]).mean()
    assert same_cell < 3.0 < other_cell


def test_rooms_keep_the_arm_above_its_support_and_the_camera_above_the_floor(robot):
    """Frames with a room: every keypoint off the base above the table top or floor, the camera
    above the floor, the room drawn around the robot; a config without rooms draws none."""
    from robotag_ros.data.synthetic.dr_config import RoomConfig
    from robotag_ros.data.synthetic.frame_generator import frame_rng
    from robotag_ros.data.synthetic.room import sample_layout, sample_scenery
    config = DRConfig()
    config.room = RoomConfig(weights=[0.5, 0.5, 0.0])
    config.lights.shadows = True
    generator = SyntheticFrameGenerator(robot, config, HEIGHT, WIDTH)
    lifted = robot.keypoints_off_base
    try:
        for index in range(4):
            frame = generator.generate(3, index)
            keypoints_base = frame.keypoints_3d_m @ frame.T_base_cam[:3, :3].T \
                + frame.T_base_cam[:3, 3]
            assert keypoints_base[lifted, 2].min() >= config.room.min_keypoint_height_m - 1e-9
            layout = sample_layout(frame_rng(3, index, stream=1), config.room)
            assert layout.mode in ('floor', 'table')
            assert frame.T_base_cam[2, 3] >= layout.floor_z_m + config.room.camera_clearance_m
            boxes = sample_scenery(frame_rng(5, index), config.room, layout,
                                   frame.T_base_cam[:3, 3])
            assert len(boxes) >= 1 + (layout.mode == 'table')   # the floor, and the table
            # The floor covers more of the image than the robot: the room is drawn (depth is
            # zero only where nothing is).
            assert (frame.depth_m > 0).mean() > frame.robot_mask.mean() + 0.1
    finally:
        generator.close()
    plain = SyntheticFrameGenerator(robot, DRConfig(), HEIGHT, WIDTH)
    try:
        assert not plain.rooms and plain.renderer.max_scenery == 0
    finally:
        plain.close()


def test_the_robot_can_wear_its_own_material_colours(robot, renderer):
    """The Panda's meshes carry white and near-black materials; one geom per material part,
    and random colours per link map onto every part of the link."""
    own = renderer.own_rgba
    assert renderer.num_robot_geoms > renderer.num_robot_links
    assert own[:, :3].max() > 0.85 and own[:, :3].min() < 0.3
    link_colours = np.random.default_rng(0).uniform(size=(renderer.num_robot_links, 4))
    per_geom = renderer.link_colours_to_geoms(link_colours)
    assert np.array_equal(per_geom, link_colours[renderer.geom_link_index])
