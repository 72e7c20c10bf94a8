"""The estimator node's frame-recording hook (record_buffer_dir), with real rclpy processes.

The node (fake estimator) records every n-th frame it estimates into the bounded buffer that
``robotag-finetune --online`` reads; bad frames are not recorded, the buffer stays bounded.
"""
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip('rclpy', reason='rclpy not installed: run scripts/install_ros.sh')

from robotag_ros.finetune import FrameBuffer  # noqa: E402
from robotag_ros.harness.sample_run import NodeSession  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
HARNESS = REPO / 'test' / 'ros_harness.py'
FAKE_FACTORY = 'robotag_ros.harness.fake_estimator:make_fake_estimator'
K = [[80.0, 0.0, 32.0], [0.0, 80.0, 24.0], [0.0, 0.0, 1.0]]


def test_node_records_every_nth_good_frame_into_a_bounded_buffer(tmp_path):
    buffer_dir = tmp_path / 'buffer'
    # CameraInfo with every image, as cameras publish it: a lone first CameraInfo can be lost
    # while discovery is still matching the node's subscription to the driver's publisher.
    info = {'K': K, 'width': 64, 'height': 48}
    frames = [dict(index=i, camera_info=info) for i in range(0, 9)]
    frames.insert(3, dict(index=99, encoding='16UC1', camera_info=info))   # dropped: bad encoding
    (tmp_path / 'scenario.json').write_text(json.dumps({
        'frame_id': 'cam', 'image_topic': '/camera/image_raw',
        'camera_info_topic': '/camera/camera_info', 'frames': frames}))
    with NodeSession(tmp_path / 'session', domain_id=10 + os.getpid() % 80, params_file=None,
                     camera_namespace='/camera', listen=False, parameters={
                         'estimator_factory': FAKE_FACTORY, 'record_buffer_dir': str(buffer_dir),
                         'record_every_n': 2, 'record_buffer_capacity': 3}) as session:
        session.run([sys.executable, str(HARNESS), 'drive', str(tmp_path / 'scenario.json'),
                     str(tmp_path / 'driven.json')], timeout_s=90).check_returncode()
        time.sleep(0.5)   # the recorder writes on its own thread
    log = session.node_log()   # the session stopped the node with Ctrl-C, its documented way
    driven = json.loads((tmp_path / 'driven.json').read_text())['frames']
    estimated = [f for f in driven if f['answer'] and f['answer']['level'] == 0]
    assert len(estimated) == 9, log
    recorded = FrameBuffer(buffer_dir).frames()
    # 9 estimated frames, every 2nd recorded = 5, of which the newest 3 are kept.
    assert [f.seq for f in recorded] == [2, 3, 4], log
    image, K_recorded = recorded[-1].load()
    assert image.shape == (48, 64, 3)
    np.testing.assert_allclose(K_recorded, K)
