"""Driver process for the calibration tests: feeds camera poses, then joins /tf_static late.

    python test/calibration_harness.py SCENARIO.json RESULT.json
    python test/calibration_harness.py --listen-static RESULT.json

The first form publishes each scenario pose on /estimator/camera_pose (with its consistency on
/diagnostics), waits for the node's .calib file, then, and only then, creates a new subscriber
to /tf_static with transient-local QoS and records what it receives: a late joiner gets the
static transform only if it was published transient local. ``--listen-static`` only joins
/tf_static and records what it receives. The caller sets a local-only DDS environment.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from tf2_msgs.msg import TFMessage

from robotag_ros.ros.messages import ESTIMATOR_DIAGNOSTIC_NAME, pose_stamped


def listen_static(timeout_s: float = 15.0) -> list[dict]:
    """Join /tf_static now (transient local, as tf2 listeners do); the transforms received."""
    listener = rclpy.create_node('calibration_test_late_listener')
    qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)
    received = []

    def on_tf(msg: TFMessage):
        for t in msg.transforms:
            received.append({
                'parent': t.header.frame_id, 'child': t.child_frame_id,
                'translation': [t.transform.translation.x, t.transform.translation.y,
                                t.transform.translation.z],
                'rotation_xyzw': [t.transform.rotation.x, t.transform.rotation.y,
                                  t.transform.rotation.z, t.transform.rotation.w]})

    listener.create_subscription(TFMessage, '/tf_static', on_tf, qos)
    deadline = time.monotonic() + timeout_s
    while not received and time.monotonic() < deadline:
        rclpy.spin_once(listener, timeout_sec=0.1)
    listener.destroy_node()
    return received


def main(scenario_path: str, result_path: str) -> int:
    scenario = json.loads(Path(scenario_path).read_text())
    rclpy.init()
    driver = rclpy.create_node('calibration_test_driver')
    result = {'received': []}
    try:
        pose_pub = driver.create_publisher(PoseStamped, '/estimator/camera_pose', 100)
        diag_pub = driver.create_publisher(DiagnosticArray, '/diagnostics', 100)
        deadline = time.monotonic() + 20.0
        while (pose_pub.get_subscription_count() == 0
               or diag_pub.get_subscription_count() == 0) and time.monotonic() < deadline:
            rclpy.spin_once(driver, timeout_sec=0.1)
        for index, (T_base_cam, score) in enumerate(zip(scenario['T_base_cam'],
                                                        scenario['consistency'])):
            stamp = rclpy.time.Time(seconds=100 + index * 0.1).to_msg()
            diagnostics = DiagnosticArray()
            diagnostics.header.stamp = stamp
            # Another node's status on the same topic, with a 'consistency' key of its own:
            # the calibrator must read the estimator's status alone.
            diagnostics.status = [
                DiagnosticStatus(name='some_other_node: checker',
                                 values=[KeyValue(key='consistency', value='0.0')]),
                DiagnosticStatus(name=ESTIMATOR_DIAGNOSTIC_NAME,
                                 values=[KeyValue(key='consistency', value=f'{score:.4f}')])]
            diag_pub.publish(diagnostics)
            pose_pub.publish(pose_stamped(np.asarray(T_base_cam), stamp, scenario['base_frame']))
            time.sleep(0.01)
        calib = Path(scenario['calib_path'])
        deadline = time.monotonic() + 20.0
        while not calib.exists() and time.monotonic() < deadline:
            rclpy.spin_once(driver, timeout_sec=0.1)
        result['calib_written'] = calib.exists()

        # The late joiner: created after the node published its static transform.
        result['received'] = listen_static()
    finally:
        Path(result_path).write_text(json.dumps(result))
        driver.destroy_node()
        rclpy.try_shutdown()
    return 0


def listen_only(result_path: str) -> int:
    rclpy.init()
    try:
        Path(result_path).write_text(json.dumps({'received': listen_static()}))
    finally:
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    if sys.argv[1] == '--listen-static':
        sys.exit(listen_only(sys.argv[2]))
    sys.exit(main(sys.argv[1], sys.argv[2]))
