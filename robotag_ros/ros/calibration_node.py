"""Live hand-eye calibration node: the estimator's camera poses in, a .calib and /tf_static out.

Subscribes to ``camera_pose`` (the estimator's ``~/camera_pose``, PoseStamped: the camera's pose
in the base frame; remap in launch), ``/diagnostics`` (the estimator's per-frame ``consistency``)
and, for eye-in-hand, the robot's measured ``joint_states_topic``. Accumulates the estimates
(bounded), and after every ``frames_to_calibrate`` new frames, on the ``~/calibrate`` service
(std_srvs/Trigger, where std_srvs is installed) or on any message to ``~/calibrate_now``
(std_msgs/Empty), aggregates them with :mod:`robotag_ros.calibration`, writes easy_handeye2's
``.calib`` atomically and publishes the result on ``/tf_static`` (transient local, so late
joiners receive it).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from rclpy.exceptions import InvalidParameterValueException
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Empty

from robotag_ros.calibration.calib_file import (DEFAULT_CALIBRATIONS_DIRECTORY, read_calib,
                                                write_calib)
from robotag_ros.calibration.hand_eye import EYE_IN_HAND
from robotag_ros.calibration.live import CalibrationSettings, LiveCalibrator, calibrate_series
from robotag_ros.geometry.poses import transform_from_pose_msg
from robotag_ros.parameters.calibrator import CALIBRATOR_PARAMETERS
from robotag_ros.robot import load_robot
from robotag_ros.ros.messages import ESTIMATOR_DIAGNOSTIC_NAME
from robotag_ros.ros.parameters import declare_parameters
from robotag_ros.ros.spin import spin_node
from robotag_ros.ros.static_tf import StaticTransformPublisher, calibration_transform
from robotag_ros.stamps import stamp_to_ns

try:
    from std_srvs.srv import Trigger
except ImportError:   # not always installed; the ~/calibrate_now topic always works
    Trigger = None


class CalibrationNode(Node):
    """ROS shell around :class:`robotag_ros.calibration.live.LiveCalibrator`."""

    def __init__(self, node_name: str = 'calibrator', **kwargs):
        """Declare parameters, create the subscriptions, the trigger and the static publisher."""
        super().__init__(node_name, **kwargs)
        declare_parameters(self, CALIBRATOR_PARAMETERS)
        p = self._param
        self.settings = CalibrationSettings(
            name=p('name'), calibration_type=p('calibration_type'), base_frame=p('base_frame'),
            camera_frame=p('camera_frame'), effector_frame=p('effector_frame'),
            min_consistency=p('min_consistency'), reject_outliers=p('reject_outliers'),
            mad_k=p('mad_k'))
        self.output = Path(p('output') or DEFAULT_CALIBRATIONS_DIRECTORY / f'{p("name")}.calib')
        self.robot = None
        joint_names = None
        if self.settings.calibration_type == EYE_IN_HAND:
            self.robot = load_robot(p('robot'))
            joint_names = list(self.robot.joint_names)
        self.calibrator = LiveCalibrator(p('max_frames'), joint_names, p('stamp_tolerance_s'))
        self._since_last = 0
        self.static_tf = StaticTransformPublisher(self)

        self.create_subscription(PoseStamped, 'camera_pose', self._on_pose, 50)
        self.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 50)
        if joint_names:
            self.create_subscription(JointState, p('joint_states_topic'), self._on_joints, 50)
        self.create_subscription(Empty, '~/calibrate_now', lambda _: self.calibrate(), 1)
        if Trigger is not None:
            self.create_service(Trigger, '~/calibrate', self._on_trigger)
        if p('publish_calib_file'):
            calibration = read_calib(p('publish_calib_file'))
            self.static_tf.send(calibration_transform(calibration,
                                                      self.get_clock().now().to_msg()))
        self.get_logger().info(
            f'calibrator ready: {self.settings.calibration_type}, writing {self.output} after '
            f'every {p("frames_to_calibrate")} frames or on ~/calibrate')

    def _param(self, name):
        return self.get_parameter(name).value

    def _on_pose(self, msg: PoseStamped) -> None:
        T = transform_from_pose_msg(msg.pose)
        frame = msg.header.frame_id
        if frame == self.settings.base_frame:
            T = np.linalg.inv(T)   # the camera's pose in the base -> T_cam_base
        elif frame != self.settings.camera_frame:
            self.get_logger().warning(
                f'camera_pose in frame {frame!r}, neither base_frame '
                f'{self.settings.base_frame!r} nor camera_frame: ignored',
                throttle_duration_sec=5.0)
            return
        try:
            self.calibrator.add_estimate(stamp_to_ns(msg.header.stamp), T)
        except ValueError as error:
            self.get_logger().warning(f'camera_pose ignored: {error}',
                                      throttle_duration_sec=5.0)
            return
        self._since_last += 1
        every = self._param('frames_to_calibrate')
        if every > 0 and self._since_last >= every:
            self.calibrate()

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name != ESTIMATOR_DIAGNOSTIC_NAME:   # other nodes' statuses share the topic
                continue
            for key_value in status.values:
                if key_value.key == 'consistency':
                    try:
                        score = float(key_value.value)
                    except ValueError:
                        continue
                    self.calibrator.add_consistency(stamp_to_ns(msg.header.stamp), score)

    def _on_joints(self, msg: JointState) -> None:
        self.calibrator.add_joint_state(stamp_to_ns(msg.header.stamp), msg.name, msg.position)

    def _on_trigger(self, _request, response):
        calibration = self.calibrate()
        response.success = calibration is not None
        response.message = (f'wrote {self.output}' if calibration is not None
                            else 'calibration failed (see the log)')
        return response

    def calibrate(self):
        """Aggregate what has arrived, write the .calib, publish /tf_static; None on failure."""
        self._since_last = 0
        try:
            result, calibration = calibrate_series(self.calibrator.series(), self.settings,
                                                   self.robot)
            write_calib(self.output, calibration)
        except (ValueError, KeyError, OSError) as error:
            self.get_logger().error(f'calibration failed: {error}')
            return None
        self.static_tf.send(calibration_transform(calibration, self.get_clock().now().to_msg()))
        summary = result.summary()
        self.get_logger().info(
            f'wrote {self.output}: {summary["frames_used"]}/{summary["frames_total"]} frames, '
            f'spread {summary["translation_spread_mm"]:.1f} mm / '
            f'{summary["rotation_spread_deg"]:.2f} deg')
        motion = result.extra.get('camera_motion')
        if motion is not None and motion.moved:
            self.get_logger().warning(motion.warning())
        return calibration


def main(args=None) -> int:
    """Console script `calibrator`: spin the node until Ctrl-C or shutdown."""
    return spin_node(CalibrationNode, 'calibrator',
                     (InvalidParameterValueException, ValueError, ImportError,
                      FileNotFoundError), args)


if __name__ == '__main__':
    sys.exit(main())
