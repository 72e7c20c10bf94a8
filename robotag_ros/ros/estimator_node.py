"""The estimator node: Image + CameraInfo in; JointState, TF, pose, overlay, markers, cloud and
diagnostics out. A thin shell over an estimator object with
``estimate(image_rgb HxWx3 uint8, K 3x3) -> Estimate``.

Subscriptions (relative, remap in launch): ``image``, ``camera_info`` (sensor-data QoS by default).
Publications, stamped with the image's stamp: ``joint_states``, ``/tf`` (camera <-> base),
``~/camera_pose`` (camera pose in the base frame), ``/diagnostics`` and, only while someone
subscribes, ``~/debug_image``, ``~/keypoints`` (MarkerArray) and ``~/points`` (PointCloud2).

Only the newest frame is kept: the subscription callback stores it, a worker thread infers on it,
so slow inference drops frames instead of building a backlog. Bad input drops the frame with a
throttled warning naming the cause; the node goes on. A CameraInfo whose K is no plausible pinhole
camera is ignored with a warning per kind of fault, naming the field. When camera_info keeps
arriving but images do not (a wrong topic, or frames over the DDS transport's message size), the
node says so in a warning and on /diagnostics.

With ``measured_joint_states_topic`` set (the robot driver's JointState, e.g. ``/joint_states``)
the joints are known: each image takes the measured joints stamped nearest to it (within
``measured_joint_states_max_age_s``), the estimator fits only the camera to them, and the node
publishes no JointState of its own (the driver does). This is the mode for markerless hand-eye
calibration (docs/uses.md).
"""
from __future__ import annotations

import importlib
import inspect
import os
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PoseStamped
from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                SetParametersResult)
from rclpy.exceptions import InvalidParameterValueException
from rclpy.node import Node
from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy,
                       qos_profile_sensor_data)
from sensor_msgs.msg import CameraInfo, Image, JointState, PointCloud2
from visualization_msgs.msg import MarkerArray

from robotag_ros.bundled import default_model_path
from robotag_ros.finetune.hooks import OnlineHooks, serving_model_path
from robotag_ros.geometry.camera import pinhole_problem
from robotag_ros.geometry.letterbox import plan_letterbox
from robotag_ros.inference.backends import BACKEND_CHOICES, BackendUnavailable
from robotag_ros.inference.estimate import missing_pose_estimator_members
from robotag_ros.model.artifact import ArtifactError
from robotag_ros.ros import messages
from robotag_ros.ros.conversions import (CameraInfoError, ImageConversionError,
                                         camera_info_to_K, image_to_rgb, intrinsics_to_K,
                                         rgb_to_image)
from robotag_ros.ros.spin import spin_node
from robotag_ros.stamps import NS_PER_S, stamp_to_ns
from robotag_ros.visualization import draw_estimate

try:   # the real TF broadcaster where a ROS 2 install provides it
    from tf2_ros import TransformBroadcaster
except ImportError:
    TransformBroadcaster = None
try:   # else the message type, built locally by scripts/install_ros.sh
    from tf2_msgs.msg import TFMessage
except ImportError:
    TFMessage = None

RELIABILITIES = ('best_effort', 'reliable')
TF_PARENTS = ('camera', 'base')
WARN_PERIOD_S = 5.0
# camera_info messages in a row, over at least this many seconds, without an image: warn.
IMAGE_SILENCE_S = 3.0
IMAGE_SILENCE_INFOS = 3
DEFAULT_FACTORY = 'robotag_ros.estimator_factory:load_estimator'


@dataclass
class _Frame:
    image: Image
    received_ns: int   # monotonic clock, for receive-to-publish latency


def _descriptor(description, read_only=False, **kwargs):
    return ParameterDescriptor(description=description, read_only=read_only, **kwargs)


# name -> (default, descriptor); read-only ones are fixed at start-up.
PARAMETERS = {
    'model_path': ('', _descriptor(
        "Model artifact (weights + sidecar, path without suffix) loaded by the estimator "
        "factory; '' = the bundled default models/panda_default.", read_only=True)),
    'backend': ('auto', _descriptor(
        f'Inference backend: one of {", ".join(BACKEND_CHOICES)}; auto = onnxruntime on cpu, '
        'torch on cuda.', read_only=True)),
    'device': ('cpu', _descriptor("Inference device: 'cpu', 'cuda' or 'cuda:N'.",
                                  read_only=True)),
    'robot': ('', _descriptor(
        "Robot the model estimates (bundled name or robot YAML); '' = the artifact's.",
        read_only=True)),
    'estimator_factory': ('', _descriptor(
        "'package.module:callable' building the estimator from (model_path, backend, device"
        "[, robot]); '' = robotag_ros.estimator_factory:load_estimator. Tests use "
        "robotag_ros.harness.fake_estimator:make_fake_estimator.", read_only=True)),
    'camera_frame': ('', _descriptor(
        "Camera optical frame for TF and outputs; '' = the image's header.frame_id.")),
    'base_frame': ('', _descriptor(
        "Robot base frame; '' = the robot description's base frame (panda_link0 for the "
        "Panda), else 'base_link'.")),
    'publish_tf': (True, _descriptor('Publish the camera <-> base transform on /tf.')),
    'tf_parent': ('camera', _descriptor(
        "Which frame is TF parent: 'camera' publishes T_cam_base (base as child of the camera), "
        "'base' publishes T_base_cam (camera as child of the base).")),
    'min_consistency': (0.0, _descriptor(
        'Frames whose consistency score (0..1) is below this are not published '
        '(diagnostics still are).',
        floating_point_range=[FloatingPointRange(from_value=0.0, to_value=1.0, step=0.0)])),
    'track_robot': (True, _descriptor(
        "Look for the robot in the next frame where this frame found it (skips the estimator's "
        'whole-frame first pass while estimates stay consistent; estimators without '
        'next_box() ignore it).')),
    'intrinsics': ([0.0, 0.0, 0.0, 0.0], _descriptor(
        'Fallback intrinsics [fx, fy, cx, cy] in pixels used until a valid camera_info '
        'arrives; all zeros = wait for camera_info.')),
    'image_qos_reliability': ('best_effort', _descriptor(
        "Reliability of the image and camera_info subscriptions: 'best_effort' (REP 2003 "
        "sensor data) or 'reliable'.", read_only=True)),
    'image_qos_depth': (5, _descriptor(
        'History depth of the image and camera_info subscriptions.', read_only=True,
        integer_range=[IntegerRange(from_value=1, to_value=100, step=1)])),
    'axis_length_m': (0.15, _descriptor(
        'Length of the base axes drawn on ~/debug_image, metres.',
        floating_point_range=[FloatingPointRange(from_value=0.0, to_value=10.0, step=0.0)])),
    # Online fine-tuning hooks (robotag_ros.finetune.hooks); both off by default.
    'record_buffer_dir': ('', _descriptor(
        "Folder of the bounded frame buffer for online fine-tuning; '' = off.", read_only=True)),
    'record_every_n': (10, _descriptor(
        'Record every n-th processed frame into the buffer.', read_only=True,
        integer_range=[IntegerRange(from_value=1, to_value=10000, step=1)])),
    'record_buffer_capacity': (500, _descriptor(
        'Frames the buffer keeps (oldest deleted).', read_only=True,
        integer_range=[IntegerRange(from_value=1, to_value=1000000, step=1)])),
    'models_dir': ('', _descriptor(
        "Model store: serve its 'current' artifact and swap in better fine-tuned candidates "
        "(needs record_buffer_dir); '' = off.", read_only=True)),
    'measured_joint_states_topic': ('', _descriptor(
        "JointState topic of the robot's encoders (e.g. /joint_states): the joints are taken "
        "as measured, only the camera is fitted, and the node publishes no JointState; '' = "
        'joints estimated from the image.', read_only=True)),
    'measured_joint_states_max_age_s': (0.1, _descriptor(
        'Largest stamp difference between an image and the measured joint state used with it; '
        'frames without one are dropped.',
        floating_point_range=[FloatingPointRange(from_value=0.0, to_value=10.0, step=0.0)])),
}


def validate_parameter(name: str, value) -> str | None:
    """Return why ``value`` is invalid for parameter ``name``, or None if it is valid."""
    if name == 'backend' and value not in BACKEND_CHOICES:
        return f'backend must be one of {BACKEND_CHOICES}, got {value!r}'
    if name == 'device' and not (value == 'cpu' or value == 'cuda'
                                 or (value.startswith('cuda:') and value[5:].isdigit())):
        return f"device must be 'cpu', 'cuda' or 'cuda:N', got {value!r}"
    if name == 'estimator_factory' and value and value.count(':') != 1:
        return f"estimator_factory must be 'module:callable', got {value!r}"
    if name == 'tf_parent' and value not in TF_PARENTS:
        return f'tf_parent must be one of {TF_PARENTS}, got {value!r}'
    if name == 'image_qos_reliability' and value not in RELIABILITIES:
        return f'image_qos_reliability must be one of {RELIABILITIES}, got {value!r}'
    if name == 'intrinsics':
        values = list(value)
        if len(values) != 4 or not np.isfinite(values).all():
            return f'intrinsics must be 4 finite numbers [fx, fy, cx, cy], got {values}'
        if any(values) and (values[0] <= 0 or values[1] <= 0):
            return f'intrinsics focal lengths must be positive, got {values}'
        if any(values):
            problem = pinhole_problem(intrinsics_to_K(*values))
            if problem is not None:
                return f'intrinsics {values}: {problem[1]}'
    return None


def load_factory(spec: str):
    """The estimator factory named by 'module:callable', or the project's default."""
    module_name, attribute = (spec or DEFAULT_FACTORY).split(':')
    return getattr(importlib.import_module(module_name), attribute)


def build_estimator(factory, model_path: str, backend: str, device: str, robot: str):
    """Call the factory; pass ``robot`` only to factories that take it."""
    kwargs = dict(model_path=model_path, backend=backend, device=device)
    if 'robot' in inspect.signature(factory).parameters:
        kwargs['robot'] = robot
    estimator = factory(**kwargs)
    missing = missing_pose_estimator_members(estimator)
    if missing:
        raise ValueError(f'the estimator factory returned a {type(estimator).__name__} without '
                         f'{missing} (see robotag_ros.inference.estimate.PoseEstimator)')
    if robot and '/' not in robot and estimator.robot_name != robot:
        raise ValueError(f'parameter robot={robot!r} but the model is for '
                         f'{estimator.robot_name!r}')
    return estimator


class MeasuredJoints:
    """The last JointState messages that hold every estimated joint, matched to images by
    stamp (messages may name more joints, in any order: the gripper's, a second arm's)."""

    def __init__(self, joint_names: list[str], history: int = 200):
        self.joint_names = list(joint_names)
        self._stamped: deque[tuple[int, np.ndarray]] = deque(maxlen=history)

    def add(self, stamp_ns: int, names, positions) -> bool:
        """Keep one message; False (ignored) when it lacks a joint or a finite position."""
        by_name = dict(zip(names, positions))
        if not all(name in by_name for name in self.joint_names):
            return False
        values = np.array([by_name[name] for name in self.joint_names], dtype=np.float64)
        if not np.isfinite(values).all():
            return False
        self._stamped.append((stamp_ns, values))
        return True

    def nearest(self, stamp_ns: int, max_age_s: float) -> np.ndarray | None:
        """The joints stamped nearest to ``stamp_ns``, None if none is within ``max_age_s``."""
        if not self._stamped:
            return None
        found_ns, values = min(self._stamped, key=lambda item: abs(item[0] - stamp_ns))
        return values if abs(found_ns - stamp_ns) <= max_age_s * NS_PER_S else None


class EstimatorNode(Node):
    """ROS 2 shell around an estimator; see the module docstring for its interface."""

    def __init__(self, estimator=None, node_name: str = 'estimator', **kwargs):
        """Declare parameters, build the estimator (unless given), create the interfaces."""
        super().__init__(node_name, **kwargs)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        for name, (default, descriptor) in PARAMETERS.items():
            self.declare_parameter(name, default, descriptor)
        p = self._param

        def load(model_path):
            return build_estimator(load_factory(p('estimator_factory')), str(model_path),
                                   p('backend'), p('device'), p('robot'))
        model_path = p('model_path') or str(default_model_path())
        self._estimator = estimator if estimator is not None else load(
            serving_model_path(p('models_dir'), model_path))
        self._online = OnlineHooks(
            self._estimator, p('record_buffer_dir'), p('record_every_n'),
            p('record_buffer_capacity'), p('models_dir'), loader=load,
            log=self.get_logger().info)
        self._estimator = self._online.estimator   # swappable when models_dir is set

        self._lock = threading.Condition()
        self._latest: _Frame | None = None
        self._K_from_info: np.ndarray | None = None
        self._info_size: tuple[int, int] | None = None   # (width, height) of the camera_info
        self._last_warning_s: dict[str, float] = {}
        self._frames_processed = 0
        # Where the robot was in the last frame (two-pass estimators skip their first pass).
        self._robot_box, self._robot_box_hw = None, None
        self._frames_published = 0
        self._frames_skipped = 0   # overwritten by a newer frame before inference
        self._drops: dict[str, int] = {}
        self._camera_info_refused: dict[str, int] = {}   # kind -> count
        self._last_image_s = time.monotonic()   # start-up counts as "the last image"
        self._infos_since_image = 0
        self._last_info_stamp = None

        depth = p('image_qos_depth')
        reliability = (ReliabilityPolicy.BEST_EFFORT if p('image_qos_reliability') == 'best_effort'
                       else ReliabilityPolicy.RELIABLE)
        sensor_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth,
                                reliability=reliability,
                                durability=qos_profile_sensor_data.durability)
        self._image_sub = self.create_subscription(Image, 'image', self._on_image, sensor_qos)
        self.create_subscription(CameraInfo, 'camera_info', self._on_camera_info, sensor_qos)
        self.create_timer(1.0, self._check_image_silence)
        self._measured = None
        if p('measured_joint_states_topic'):
            self._measured = MeasuredJoints(list(self._estimator.joint_names))
            self.create_subscription(JointState, p('measured_joint_states_topic'),
                                     self._on_measured_joints, 50)

        self._joint_pub = self.create_publisher(JointState, 'joint_states', 10)
        self._pose_pub = self.create_publisher(PoseStamped, '~/camera_pose', 10)
        self._debug_pub = self.create_publisher(Image, '~/debug_image', 1)
        self._markers_pub = self.create_publisher(MarkerArray, '~/keypoints', 1)
        self._points_pub = self.create_publisher(PointCloud2, '~/points', 1)
        self._diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        if TransformBroadcaster is not None:
            broadcaster = TransformBroadcaster(self)
            self._send_transform = broadcaster.sendTransform
        elif TFMessage is not None:
            # tf2_ros' dynamic broadcaster QoS: reliable, volatile, depth 100.
            tf_qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                                durability=DurabilityPolicy.VOLATILE)
            tf_pub = self.create_publisher(TFMessage, '/tf', tf_qos)
            self._send_transform = lambda t: tf_pub.publish(TFMessage(transforms=[t]))
        else:
            self._send_transform = None
            self.get_logger().warning('neither tf2_ros nor tf2_msgs is importable: no /tf '
                                      '(run scripts/install_ros.sh to build tf2_msgs)')

        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._work, name='estimator_worker', daemon=True)
        self._worker.start()
        self.get_logger().info(
            f'estimator ready: backend={self._estimator.backend_name} '
            f'device={p("device")} '
            f'model={model_path} factory={p("estimator_factory") or "default"}')

    # -- parameters ---------------------------------------------------------------------------
    def _param(self, name):
        return self.get_parameter(name).value

    def _on_set_parameters(self, parameters) -> SetParametersResult:
        for parameter in parameters:
            if parameter.name in PARAMETERS:
                reason = validate_parameter(parameter.name, parameter.value)
                if reason is not None:
                    return SetParametersResult(successful=False, reason=reason)
        return SetParametersResult(successful=True)

    # -- input --------------------------------------------------------------------------------
    def _on_image(self, msg: Image) -> None:
        frame = _Frame(msg, time.monotonic_ns())
        with self._lock:
            if self._latest is not None:
                self._frames_skipped += 1
            self._latest = frame
            self._last_image_s, self._infos_since_image = time.monotonic(), 0
            self._lock.notify()

    def _on_measured_joints(self, msg: JointState) -> None:
        with self._lock:
            usable = self._measured.add(stamp_to_ns(msg.header.stamp), msg.name, msg.position)
        if not usable:
            self._warn('measured_joint_states_incomplete',
                       f'ignoring {self._param("measured_joint_states_topic")}: a message lacks '
                       f'one of {self._measured.joint_names} or has a non-finite position')

    def _on_camera_info(self, msg: CameraInfo) -> None:
        with self._lock:
            self._infos_since_image += 1
            self._last_info_stamp = msg.header.stamp
        try:
            K = camera_info_to_K(msg)
        except CameraInfoError as error:
            # One throttled warning per kind of fault: a stream of one kind never hides another.
            with self._lock:
                self._camera_info_refused[error.kind] = \
                    self._camera_info_refused.get(error.kind, 0) + 1
            self._warn(f'camera_info_{error.kind}', f'ignoring camera_info: {error}')
            return
        with self._lock:
            self._K_from_info = K
            self._info_size = (msg.width, msg.height)

    def _check_image_silence(self) -> None:
        """camera_info keeps coming but images do not: say why that may be, once per period."""
        with self._lock:
            silent_s = time.monotonic() - self._last_image_s
            infos, stamp = self._infos_since_image, self._last_info_stamp
        if infos < IMAGE_SILENCE_INFOS or silent_s < IMAGE_SILENCE_S:
            return
        transports = os.environ.get('FASTDDS_BUILTIN_TRANSPORTS', '')
        text = (f'{infos} camera_info messages but no image on {self._image_sub.topic_name} for '
                f'{silent_s:.0f} s: check the image topic, and that frames fit the DDS '
                'transport\'s message size'
                + (f' (FASTDDS_BUILTIN_TRANSPORTS={transports})' if transports else '')
                + '; larger frames are lost without an error (see docs/node.md)')
        if self._warn('no_images', text):
            self._publish_diagnostics(stamp, DiagnosticStatus.WARN, f'no images: {text}',
                                      {'seconds_without_image': round(silent_s, 1),
                                       'camera_infos_without_image': infos})

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
                K_info, info_size = self._K_from_info, self._info_size
            if frame is None:
                continue
            try:
                self._process(frame, K_info, info_size)
            except Exception as error:   # noqa: BLE001 - the node must outlive any frame
                self._drop(frame, 'internal_error', f'{type(error).__name__}: {error}')

    def _intrinsics(self, K_info, info_size, image: Image):
        """K for this image and why there is none (None, reason) if unusable."""
        if K_info is not None:
            width, height = info_size
            if (width, height) != (0, 0) and (width, height) != (image.width, image.height):
                return None, ('camera_info_mismatch', f'camera_info is {width}x{height} but the '
                              f'image is {image.width}x{image.height}')
            return K_info, None
        fx, fy, cx, cy = self._param('intrinsics')
        if fx > 0 and fy > 0:
            return intrinsics_to_K(fx, fy, cx, cy), None
        return None, ('no_camera_info', 'no valid camera_info received yet and no intrinsics '
                      'parameter set; waiting')

    def _drop(self, frame: _Frame, cause: str, text: str) -> None:
        self._drops[cause] = self._drops.get(cause, 0) + 1
        self._warn(cause, f'dropped frame: {text}')
        self._publish_diagnostics(frame, DiagnosticStatus.WARN, f'frame dropped: {cause}: {text}',
                                  {'drop_cause': cause})

    def _process(self, frame: _Frame, K_info, info_size) -> None:
        image = frame.image
        self._frames_processed += 1
        K, problem = self._intrinsics(K_info, info_size, image)
        if problem is not None:
            self._drop(frame, *problem)
            return
        try:
            image_rgb = image_to_rgb(image)
        except ImageConversionError as error:
            self._drop(frame, 'bad_image', str(error))
            return
        problem = self._image_size_problem(image.height, image.width)
        if problem is not None:
            self._drop(frame, 'bad_image', problem)
            return
        options = {}
        if self._measured is not None:
            with self._lock:
                measured = self._measured.nearest(stamp_to_ns(image.header.stamp),
                                                  self._param('measured_joint_states_max_age_s'))
            if measured is None:
                self._drop(frame, 'no_measured_joints', 'no joint state on '
                           f'{self._param("measured_joint_states_topic")} within '
                           f'{self._param("measured_joint_states_max_age_s")} s of the image')
                return
            options['joint_angles_rad'] = measured
        start = time.perf_counter()
        tracking = self._param('track_robot')
        box = self._robot_box if tracking and self._robot_box_hw == image_rgb.shape[:2] \
            else None
        self._robot_box = None   # kept only when this frame gives a trustworthy one
        if tracking:
            options['box'] = box
        try:
            estimate = self._estimator.estimate(image_rgb, K, **options)
        except Exception as error:   # noqa: BLE001 - a model failure drops this frame only
            self._drop(frame, 'inference_error', f'{type(error).__name__}: {error}')
            return
        if tracking:
            self._robot_box = self._estimator.next_box(estimate)
            self._robot_box_hw = image_rgb.shape[:2]
        inference_ms = (time.perf_counter() - start) * 1000.0
        self._online.record(image_rgb, K, stamp_to_ns(image.header.stamp))   # queued, no disk wait
        if not estimate.is_finite():
            self._drop(frame, 'non_finite_estimate', 'the estimate holds NaN or infinite values')
            return

        stamp = image.header.stamp
        camera_frame = self._param('camera_frame') or image.header.frame_id
        base_frame = self._param('base_frame') or self._estimator.base_frame
        if not camera_frame:
            self._drop(frame, 'no_camera_frame', 'image has no frame_id and camera_frame is unset')
            return
        consistency = float(estimate.consistency)
        if consistency < self._param('min_consistency'):
            self._publish_diagnostics(
                frame, DiagnosticStatus.WARN,
                f'consistency {consistency:.3f} below min_consistency: not published',
                self._estimate_values(estimate, inference_ms))
            return

        if self._measured is None:   # measured joints are the driver's to publish
            self._joint_pub.publish(
                messages.joint_state(estimate.joint_names, estimate.joint_angles_rad, stamp))
        if self._param('publish_tf') and self._send_transform is not None:
            if self._param('tf_parent') == 'camera':
                transform = messages.transform_stamped(estimate.T_cam_base, stamp, camera_frame,
                                                       base_frame)
            else:
                transform = messages.transform_stamped(estimate.T_base_cam, stamp, base_frame,
                                                       camera_frame)
            self._send_transform(transform)
        self._pose_pub.publish(messages.pose_stamped(estimate.T_base_cam, stamp, base_frame))
        latency_ms = (time.monotonic_ns() - frame.received_ns) / 1e6
        self._frames_published += 1

        # Optional outputs only while someone listens; they do not count in the latency.
        if self._markers_pub.get_subscription_count() > 0:
            self._markers_pub.publish(messages.keypoint_markers(
                estimate.keypoints_3d_m, stamp, camera_frame,
                [(i, i + 1) for i in range(len(estimate.keypoints_3d_m) - 1)]))
        if self._points_pub.get_subscription_count() > 0 and estimate.points_3d_m is not None:
            self._points_pub.publish(messages.point_cloud(estimate.points_3d_m, stamp,
                                                          camera_frame))
        if self._debug_pub.get_subscription_count() > 0:
            overlay = draw_estimate(image_rgb, estimate, K,
                                    axis_length_m=self._param('axis_length_m'))
            self._debug_pub.publish(rgb_to_image(overlay, image.header))

        values = self._estimate_values(estimate, inference_ms)
        values['latency_receive_to_publish_ms'] = latency_ms
        self._publish_diagnostics(frame, DiagnosticStatus.OK, 'estimate published', values)

    def _image_size_problem(self, height: int, width: int) -> str | None:
        """Why an image of this size cannot be letterboxed to the model's input (a 1x4000 strip
        would shrink to no pixel at all), or None."""
        input_hw = self._estimator.input_hw
        if input_hw is None:
            return None
        try:
            plan_letterbox((height, width), input_hw)
        except ValueError as error:
            return str(error)
        return None

    def _estimate_values(self, estimate, inference_ms: float) -> dict[str, object]:
        values: dict[str, object] = {'consistency': float(estimate.consistency),
                                     'inference_ms': inference_ms,
                                     'joints': 'estimated' if self._measured is None
                                     else 'measured'}
        values.update({f'consistency_{k}': float(v)
                       for k, v in estimate.consistency_terms.items()})
        values.update({f'timing_{k}' if k.endswith('_ms') else f'timing_{k}_ms': float(v)
                       for k, v in estimate.timings_ms.items()})
        return values

    def _publish_diagnostics(self, frame, level, message: str,
                             values: dict[str, object]) -> None:
        """One status, stamped with the frame's image stamp (or the stamp given instead)."""
        values = dict(values)
        values.update(frames_processed=self._frames_processed,
                      frames_published=self._frames_published,
                      frames_skipped_newer_arrived=self._frames_skipped,
                      **{f'drops_{cause}': count for cause, count in self._drops.items()},
                      **{f'camera_info_refused_{kind}': count
                         for kind, count in self._camera_info_refused.items()})
        stamp = frame.image.header.stamp if isinstance(frame, _Frame) else frame
        self._diag_pub.publish(messages.diagnostic_array(
            stamp, messages.ESTIMATOR_DIAGNOSTIC_NAME, self.get_fully_qualified_name(), level,
            message, values))

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
