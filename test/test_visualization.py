"""The overlay drawing (core, ROS-free) and the fake estimator it is shown with."""
import sys

import numpy as np

from robotag_ros.harness.fake_estimator import (FAKE_T_CAM_BASE, NAN_PIXEL_RGB,
                                                RAISE_PIXEL_RGB, make_fake_estimator)
from robotag_ros.visualization import chain_edges, draw_estimate, project_base_axes

K = np.array([[200.0, 0, 80], [0, 200.0, 60], [0, 0, 1]])


def test_overlay_draws_on_a_copy_at_the_keypoints():
    image = np.zeros((120, 160, 3), np.uint8)
    estimate = make_fake_estimator().estimate(image, K)
    overlay = draw_estimate(image, estimate, K)
    assert overlay.shape == image.shape and overlay.dtype == np.uint8
    assert not image.any(), 'the input image must stay untouched'
    inside = [p for p in estimate.keypoints_2d_px if 0 <= p[0] < 160 and 0 <= p[1] < 120]
    assert inside, 'the fake keypoints should fall inside this image'
    for u, v in inside:
        assert overlay[int(round(v)), int(round(u))].any(), (u, v)


def test_base_axes_project_the_base_origin():
    axes = project_base_axes(FAKE_T_CAM_BASE, K, 0.1)
    origin_cam = FAKE_T_CAM_BASE[:3, 3]
    np.testing.assert_allclose(axes[0], (K @ origin_cam)[:2] / origin_cam[2])
    behind = FAKE_T_CAM_BASE.copy()
    behind[2, 3] = -1.0
    assert project_base_axes(behind, K, 0.1) is None


def test_chain_edges():
    assert chain_edges(3) == [(0, 1), (1, 2)]


def test_fake_estimator_triggers():
    estimator = make_fake_estimator()
    image = np.zeros((4, 4, 3), np.uint8)
    assert estimator.estimate(image, K).is_finite()
    image[0, 0] = NAN_PIXEL_RGB
    assert not estimator.estimate(image, K).is_finite()
    image[0, 0] = RAISE_PIXEL_RGB
    try:
        estimator.estimate(image, K)
    except RuntimeError as error:
        assert 'trigger pixel' in str(error)
    else:
        raise AssertionError('the raise trigger did not raise')


def test_core_modules_do_not_import_ros():
    import subprocess
    code = ('import sys; import robotag_ros.visualization, robotag_ros.harness.fake_estimator, '
            'robotag_ros.harness.local_dds; '
            'bad = [m for m in sys.modules if m == "rclpy" or m.endswith("_msgs")]; '
            'assert not bad, bad')
    subprocess.run([sys.executable, '-c', code], check=True)
