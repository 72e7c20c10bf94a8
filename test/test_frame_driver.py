"""The frame driver on its own (no node listening): unanswered frames are recorded as such, and
``give_up_after`` stops a run whose node is gone instead of waiting out every frame."""
import os

import numpy as np
import pytest

pytest.importorskip('rclpy', reason='rclpy not installed: run scripts/install_ros.sh')

import rclpy  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from robotag_ros.harness.local_dds import LOCAL_TRANSPORTS  # noqa: E402
from robotag_ros.ros.conversions import rgb_to_image  # noqa: E402
from robotag_ros.ros.frame_driver import DriverFrame, FrameDriver  # noqa: E402


@pytest.fixture
def driver(monkeypatch):
    monkeypatch.setenv('FASTDDS_BUILTIN_TRANSPORTS', LOCAL_TRANSPORTS)
    rclpy.init(domain_id=20 + (os.getpid() + 61) % 80)
    node = rclpy.create_node('frame_driver_test')
    try:
        yield FrameDriver(node, '/nobody/image_raw', '/nobody/camera_info')
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def _frames(count):
    frames = []
    for index in range(count):
        header = Header(frame_id='camera')
        header.stamp.sec = index + 1
        frames.append(DriverFrame(rgb_to_image(np.zeros((4, 6, 3), np.uint8), header)))
    return frames


def test_unanswered_frames_are_recorded_without_an_answer(driver):
    records = driver.play(_frames(3), 'answer', answer_timeout_s=0.05, attempts=2, drain_s=0.05)
    assert [r['stamp'] for r in records] == [f.key for f in _frames(3)]
    assert all(r['answer'] is None and r['round_trip_ms'] is None and r['attempts'] == 2
               for r in records)


def test_give_up_after_stops_at_that_many_unanswered_frames_in_a_row(driver):
    with pytest.raises(RuntimeError, match='2 frames in a row got no answer'):
        driver.play(_frames(5), 'answer', answer_timeout_s=0.05, attempts=1, give_up_after=2)
    with pytest.raises(ValueError, match='pace must be one of'):
        driver.play(_frames(1), 'sometimes')
