"""The estimator node: Image + CameraInfo in; JointState, /tf, the camera pose, diagnostics
and, while subscribed, overlay, markers and cloud out (robotag_ros/ros/estimate_publishers.py). A
thin shell over an estimator (a robotag_ros.inference.estimate.PoseEstimator); docs/node.md
describes its topics and parameters (robotag_ros/parameters/estimator.py).

Only the newest frame is kept: the subscription callback stores it, a worker thread infers on it,
so slow inference drops frames instead of building a backlog. Bad input (an implausible K for the
image, among others) drops the frame with a throttled warning naming the cause and a diagnostics
entry; the node goes on. When camera_info keeps arriving but images do not, the node says so.
With ``measured_joint_states_topic`` set, only the camera is estimated; with ``static_camera``
or ``camera_calibration_file``, once the camera is known only the joints are
(robotag_ros/calibration/static_camera.py; docs/uses.md).
"""
from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.exceptions import InvalidParameterValueException
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image, JointState

from robotag_ros.bundled import default_model_path
from robotag_ros.calibration.static_camera import (STABLE, RunningCamera, StaticCameraTracker,
                                                   camera_from_calib)
from robotag_ros.finetune.hooks import OnlineHooks, serving_model_path
from robotag_ros.geometry.camera import intrinsics_to_K, pinhole_problem
from robotag_ros.geometry.letterbox import plan_letterbox
from robotag_ros.inference.backends import BackendUnavailable
from robotag_ros.inference.estimate import RobotTracker
from robotag_ros.inference.factory import build_estimator, load_factory
from robotag_ros.inference.measured_joints import MeasuredJoints
from robotag_ros.model.artifact import ArtifactError
from robotag_ros.parameters.estimator import ESTIMATOR_PARAMETERS
from robotag_ros.ros import messages
from robotag_ros.ros.camera_info_watch import CameraInfoWatch
from robotag_ros.ros.conversions import ImageConversionError, image_to_rgb
from robotag_ros.ros.estimate_publishers import EstimatePublishers
from robotag_ros.ros.parameters import declare_parameters
from robotag_ros.ros.spin import spin_node
from robotag_ros.stamps import stamp_to_ns

WARN_PERIOD_S = 5.0


@dataclass
class _Frame:
    image: Image
    received_ns: int   # monotonic clock, for receive-to-publish latency


class _FrameDropped(Exception):
    """Why this frame is not estimated: (cause, text), for the warning and the diagnostics."""


class EstimatorNode(Node):
    """ROS 2 shell around an estimator; see the module docstring for its interface."""

    def __init__(self, estimator=None, node_name: str = 'estimator', **kwargs):
        """Declare parameters, build the estimator (unless given), create the interfaces."""
        super().__init__(node_name, **kwargs)
        declare_parameters(self, ESTIMATOR_PARAMETERS)
        p = self._param

        def load(model_path):
            return build_estimator(load_factory(p('estimator_factory')), str(model_path),
                                   p('backend'), p('device'), p('robot'))
        model_path = p('model_path') or str(default_model_path())
        self._online = OnlineHooks(
            estimator if estimator is not None else load(
                serving_model_path(p('models_dir'), model_path)),
            p('record_buffer_dir'), p('record_every_n'), p('record_buffer_capacity'),
            p('models_dir'), loader=load, log=self.get_logger().info)
        self._estimator = self._online.estimator   # swappable when models_dir is set
        self._measured = (MeasuredJoints(list(self._estimator.joint_names))
                          if p('measured_joint_states_topic') else None)
        self._static_camera = self._running_camera()
        self._tracker = RobotTracker(self._estimator)
        if self._static_camera is not None:
            self._tracker = StaticCameraTracker(self._tracker, self._static_camera)

        self._static_camera_announced = False
        self._lock = threading.Condition()
        self._latest: _Frame | None = None
        self._last_warning_s: dict[str, float] = {}
        self._counts = {'frames_processed': 0, 'frames_published': 0,
                        'frames_skipped_newer_arrived': 0}
        self._drops: dict[str, int] = {}
        self._camera = CameraInfoWatch()
        self._create_interfaces()

        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._work, name='estimator_worker', daemon=True)
        self._worker.start()
        self.get_logger().info(
            f'estimator ready: backend={self._estimator.backend_name} device={p("device")} '
            f'model={model_path} factory={p("estimator_factory") or "default"}')

    def _running_camera(self) -> RunningCamera | None:
        """The static camera's running estimate (``static_camera``), or the camera of
        ``camera_calibration_file``; None when the camera may move or is what is measured."""
        p = self._param
        if p('camera_calibration_file'):
            if self._measured is not None:
                raise ValueError('camera_calibration_file and measured_joint_states_topic '
                                 'together leave nothing to estimate; set one of them')
            base_frame = p('base_frame') or self._estimator.base_frame
            self.get_logger().info(f'camera fixed from {p("camera_calibration_file")}: only '
                                   'the joints are fitted')
            return RunningCamera(T_cam_base=camera_from_calib(p('camera_calibration_file'),
                                                              base_frame))
        if not p('static_camera'):
            return None
        if self._measured is not None:
            self.get_logger().info('static_camera is ignored with measured_joint_states_topic: '
                                   'the camera is what is estimated, frame by frame')
            return None
        return RunningCamera()

    def _create_interfaces(self) -> None:
        p = self._param
        reliability = (ReliabilityPolicy.BEST_EFFORT if p('image_qos_reliability') == 'best_effort'
                       else ReliabilityPolicy.RELIABLE)
        sensor_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=p('image_qos_depth'),
                                reliability=reliability,
                                durability=qos_profile_sensor_data.durability)
        self._image_sub = self.create_subscription(Image, 'image', self._on_image, sensor_qos)
        self.create_subscription(CameraInfo, 'camera_info', self._on_camera_info, sensor_qos)
        self.create_timer(1.0, self._check_image_silence)
        if self._measured is not None:
            self.create_subscription(JointState, p('measured_joint_states_topic'),
                                     self._on_measured_joints, 50)
        self._outputs = EstimatePublishers(self)

    def _param(self, name):
        return self.get_parameter(name).value

    # -- input --------------------------------------------------------------------------------
    def _on_image(self, msg: Image) -> None:
        frame = _Frame(msg, time.monotonic_ns())
        with self._lock:
            if self._latest is not None:
                self._counts['frames_skipped_newer_arrived'] += 1
            self._latest = frame
            self._lock.notify()
        self._camera.image_arrived()

    def _on_measured_joints(self, msg: JointState) -> None:
        with self._lock:
            usable = self._measured.add(stamp_to_ns(msg.header.stamp), msg.name, msg.position)
        if not usable:
            self._warn('measured_joint_states_incomplete',
                       f'ignoring {self._param("measured_joint_states_topic")}: a message lacks '
                       f'one of {self._measured.joint_names} or has a non-finite position')

    def _on_camera_info(self, msg: CameraInfo) -> None:
        error = self._camera.add(msg)
        if error is not None:
            # One throttled warning per kind of fault: a stream of one kind never hides another.
            self._warn(f'camera_info_{error.kind}', f'ignoring camera_info: {error}')

    def _check_image_silence(self) -> None:
        """camera_info keeps coming but images do not: say why that may be, once per period."""
        missing = self._camera.images_missing(self._image_sub.topic_name)
        if missing is not None and self._warn('no_images', missing[0]):
            self._publish_diagnostics(missing[2], DiagnosticStatus.WARN,
                                      f'no images: {missing[0]}', missing[1])

    def _warn(self, cause: str, text: str) -> bool:
        """Log at most one warning per cause every WARN_PERIOD_S seconds; True if logged."""
        now = time.monotonic()
        if now - self._last_warning_s.get(cause, -np.inf) >= WARN_PERIOD_S:
            self._last_warning_s[cause] = now
            self.get_logger().warning(text)
            return True
        return False

    # -- worker -------------------------------------------------------------------------------
    def _work(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                self._lock.wait_for(lambda: self._latest is not None or self._stop.is_set(),
                                    timeout=0.5)
                frame, self._latest = self._latest, None
            if frame is None:
                continue
            self._counts['frames_processed'] += 1
            try:
                self._process(frame, *self._camera.latest())
            except _FrameDropped as dropped:
                self._drop(frame, *dropped.args)
            except Exception as error:   # noqa: BLE001 - the node must outlive any frame
                self._drop(frame, 'internal_error', f'{type(error).__name__}: {error}')

    def _drop(self, frame: _Frame, cause: str, text: str) -> None:
        self._drops[cause] = self._drops.get(cause, 0) + 1
        self._warn(cause, f'dropped frame: {text}')
        self._publish_diagnostics(frame, DiagnosticStatus.WARN, f'frame dropped: {cause}: {text}',
                                  {'drop_cause': cause})

    def _process(self, frame: _Frame, K_info, info_size) -> None:
        image = frame.image
        K, source = self._intrinsics(K_info, info_size, image)
        image_rgb = self._image_rgb(image)
        # A camera_info of size 0x0 was checked without an image size: check it against this one.
        problem = pinhole_problem(K, image.width, image.height)
        if problem is not None:
            raise _FrameDropped('implausible_intrinsics', f'{source} for a {image.width}x'
                                f'{image.height} image: {problem[1]}')
        options = self._measured_options(image)
        start = time.perf_counter()
        try:
            estimate = self._tracker.estimate(image_rgb, K, track=self._param('track_robot'),
                                              **options)
        except Exception as error:   # noqa: BLE001 - a model failure drops this frame only
            raise _FrameDropped('inference_error', f'{type(error).__name__}: {error}')
        inference_ms = (time.perf_counter() - start) * 1000.0
        self._online.record(image_rgb, K, stamp_to_ns(image.header.stamp))   # queued
        if not estimate.is_finite():
            raise _FrameDropped('non_finite_estimate', 'the estimate holds NaN or infinite values')
        camera_frame = self._param('camera_frame') or image.header.frame_id
        if not camera_frame:
            raise _FrameDropped('no_camera_frame',
                                'image has no frame_id and camera_frame is unset')
        values = messages.estimate_diagnostic_values(
            estimate, inference_ms, 'estimated' if self._measured is None else 'measured')
        if self._static_camera is not None:
            self._report_static_camera(values)
        if estimate.consistency < self._param('min_consistency'):
            self._publish_diagnostics(frame, DiagnosticStatus.WARN, f'consistency '
                                      f'{estimate.consistency:.3f} below min_consistency: not '
                                      'published', values)
            return
        self._outputs.publish(estimate, image.header.stamp, camera_frame,
                              self._param('base_frame') or self._estimator.base_frame,
                              joints=self._measured is None,   # else the driver publishes them
                              tf_parent=self._param('tf_parent') if self._param('publish_tf')
                              else None)
        values['latency_receive_to_publish_ms'] = (time.monotonic_ns() - frame.received_ns) / 1e6
        self._counts['frames_published'] += 1
        self._outputs.publish_listened(estimate, image_rgb, K, image.header, camera_frame,
                                       self._param('axis_length_m'))
        self._publish_diagnostics(frame, DiagnosticStatus.OK, 'estimate published', values)

    def _report_static_camera(self, values: dict) -> None:
        """The running estimate's state in the diagnostics; one log line when it froze."""
        summary = self._static_camera.summary()
        values.update(summary)
        if self._static_camera.state == STABLE and not self._static_camera_announced:
            self._static_camera_announced = True
            self.get_logger().info(
                f'static camera stable after {summary["static_camera_frames"]} frames '
                f'(standard error {summary["static_camera_translation_sem_mm"]:.1f} mm, '
                f'{summary["static_camera_rotation_sem_deg"]:.2f} deg): fixed from now on, '
                'only the joints are fitted')

    def _intrinsics(self, K_info, info_size, image: Image) -> tuple[np.ndarray, str]:
        """K for this image and where it comes from: camera_info, else the intrinsics
        parameter."""
        if K_info is not None:
            width, height = info_size
            if (width, height) != (0, 0) and (width, height) != (image.width, image.height):
                raise _FrameDropped('camera_info_mismatch', f'camera_info is {width}x{height} '
                                    f'but the image is {image.width}x{image.height}')
            return K_info, 'camera_info'
        fx, fy, cx, cy = self._param('intrinsics')
        if not (fx > 0 and fy > 0):
            raise _FrameDropped('no_camera_info', 'no valid camera_info received yet and no '
                                'intrinsics parameter set; waiting')
        return intrinsics_to_K(fx, fy, cx, cy), 'the intrinsics parameter'

    def _image_rgb(self, image: Image) -> np.ndarray:
        """The image as HxWx3 RGB, if it can be letterboxed to the estimator's input."""
        try:
            image_rgb = image_to_rgb(image)
            if self._estimator.input_hw is not None:   # a 1x4000 strip shrinks to no pixel
                plan_letterbox((image.height, image.width), self._estimator.input_hw)
        except (ImageConversionError, ValueError) as error:
            raise _FrameDropped('bad_image', str(error))
        return image_rgb

    def _measured_options(self, image: Image) -> dict:
        """``joint_angles_rad`` for the estimator when the joints are measured."""
        if self._measured is None:
            return {}
        max_age_s = self._param('measured_joint_states_max_age_s')
        with self._lock:
            measured = self._measured.nearest(stamp_to_ns(image.header.stamp), max_age_s)
        if measured is None:
            raise _FrameDropped('no_measured_joints', 'no joint state on '
                                f'{self._param("measured_joint_states_topic")} within '
                                f'{max_age_s} s of the image')
        return {'joint_angles_rad': measured}

    # -- output -------------------------------------------------------------------------------
    def _publish_diagnostics(self, frame, level, message: str,
                             values: dict[str, object]) -> None:
        """One status, stamped with the frame's image stamp (or the stamp given instead)."""
        values = dict(values, **self._counts,
                      **{f'drops_{cause}': count for cause, count in self._drops.items()},
                      **{f'camera_info_refused_{kind}': count
                         for kind, count in self._camera.refused.items()})
        self._outputs.diagnostics(frame.image.header.stamp if isinstance(frame, _Frame) else frame,
                                  level, message, values)

    def destroy_node(self):
        """Stop the worker before the publishers go away."""
        self._stop.set()
        with self._lock:
            self._lock.notify_all()
        self._worker.join(timeout=5.0)
        self._online.close()
        return super().destroy_node()


def main(args=None) -> int:
    """Console script `estimator`: spin the node until Ctrl-C or shutdown."""
    # Bad configuration (parameters, a missing or foreign model, a device or backend this
    # machine lacks): one clear line, exit code 2.
    return spin_node(EstimatorNode, 'estimator',
                     (InvalidParameterValueException, ValueError, ImportError, FileNotFoundError,
                      ArtifactError, BackendUnavailable), args)


if __name__ == '__main__':
    sys.exit(main())
