"""Per-frame estimates of a camera recording, for calibration straight from what a user records.

The rosbag2 (sqlite3 or MCAP, read with ``rosbags``) holds an ``Image`` or ``CompressedImage``
topic, its ``CameraInfo`` and the robot's measured ``/joint_states``. Topics are found by type
when that is unambiguous. Each image gets the joint state stamped nearest to it (within a
tolerance; images without one are skipped, as the node drops them) and is estimated as the node
does: the measured joints given, only the camera fitted, each frame looking where the previous
one found the robot. Everything that can be refused (missing topics, no image near any joint
state, a damaged bag) is refused before the first image is decoded.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robotag_ros.calibration.estimates_io import (
    JOINT_STATE, EstimateSeries, _nearest, _read_joint_states,
)
from robotag_ros.data.bags.bag_images import (
    CAMERA_INFO_TYPE, IMAGE_TYPES, BagReadError, BagReadStats, _camera_info_topic_for,
    _describe_topics, _stamp_ns, bag_messages, iter_bag_images, open_bag,
)
from robotag_ros.inference.estimate import PoseEstimator, iter_recording_estimates
from robotag_ros.stamps import NS_PER_S

DEFAULT_JOINT_STATES_TOPIC = '/joint_states'


@dataclass
class RecordingTopics:
    """The three topics a recording is calibrated from."""

    image: str
    camera_info: str
    joint_states: str


@dataclass
class RecordingPlan:
    """What a recording holds, checked before any image is decoded.

    joint_stamps_ns (M,) and joint_angles_rad (M, n) are the measured joint states in stamp
    order (``joint_names`` order); image_stamps_ns (N,) the images'; frames_matched how many
    images have a joint state within ``tolerance_ns``.
    """

    bag_path: Path
    topics: RecordingTopics
    joint_names: list[str]
    joint_stamps_ns: np.ndarray
    joint_angles_rad: np.ndarray
    image_stamps_ns: np.ndarray
    tolerance_ns: int

    @property
    def frames_matched(self) -> int:
        return int((_nearest(self.joint_stamps_ns, self.image_stamps_ns,
                             self.tolerance_ns) >= 0).sum())

    def joints_at(self, stamp_ns: int) -> np.ndarray | None:
        """The measured joints stamped nearest to ``stamp_ns``; None beyond the tolerance."""
        index = int(_nearest(self.joint_stamps_ns, np.array([stamp_ns], dtype=np.int64),
                             self.tolerance_ns)[0])
        return None if index < 0 else self.joint_angles_rad[index]


@dataclass
class RecordingCounts:
    """What happened to the recording's images (frames)."""

    images: int = 0                    # image messages on the topic
    estimated: int = 0
    without_joint_state: int = 0       # no joint state within the stamp tolerance
    undecodable: int = 0               # or not the size of their CameraInfo

    def summary(self) -> dict:
        return {'recording_images': self.images, 'recording_frames_estimated': self.estimated,
                'recording_frames_without_joint_state': self.without_joint_state,
                'recording_frames_undecodable': self.undecodable}


def _pick(reader, bag_path: Path, msgtypes: tuple[str, ...], requested: str | None,
          preferred: str | None, what: str, flag: str, need: str = '') -> str:
    """The topic of one of ``msgtypes``: the requested one (checked), else ``preferred`` if it
    is there, else the only one; errors say what the bag has and which flag names one."""
    topics = {name: info.msgtype for name, info in reader.topics.items()}
    listing = _describe_topics(reader) or 'no topics at all'
    if requested:
        if requested not in topics:
            raise BagReadError(f'{what} topic {requested!r} is not in {bag_path}; it has: '
                               f'{listing}')
        if topics[requested] not in msgtypes:
            raise BagReadError(f'topic {requested!r} in {bag_path} holds {topics[requested]}, '
                               f'not {" or ".join(msgtypes)}')
        return requested
    if preferred and topics.get(preferred) in msgtypes:
        return preferred
    found = sorted(name for name, msgtype in topics.items() if msgtype in msgtypes)
    if len(found) == 1:
        return found[0]
    if not found:
        raise BagReadError(f'{bag_path} has no {what} topic ({" or ".join(msgtypes)}){need}; '
                           f'it has: {listing}')
    raise BagReadError(f'{bag_path} has several {what} topics ({", ".join(found)}); name one '
                       f'with {flag}')


def find_recording_topics(reader, bag_path: Path, image: str | None = None,
                          camera_info: str | None = None,
                          joint_states: str | None = None) -> RecordingTopics:
    """The image, CameraInfo and JointState topics of an open bag: the named ones (checked),
    else found by type when unambiguous (CameraInfo: ``<namespace>/camera_info`` of the image
    first; joint states: ``/joint_states`` first). Raises BagReadError naming what is missing."""
    image = _pick(reader, bag_path, IMAGE_TYPES, image, None, 'image', '--image-topic')
    info_preferred = _camera_info_topic_for(reader, image)
    camera_info = _pick(reader, bag_path, (CAMERA_INFO_TYPE,), camera_info, info_preferred,
                        'CameraInfo', '--camera-info-topic')
    joint_states = _pick(reader, bag_path, (JOINT_STATE,), joint_states,
                         DEFAULT_JOINT_STATES_TOPIC, 'joint states', '--joint-states-topic',
                         ": the calibration needs the robot's measured joints; record "
                         f'{DEFAULT_JOINT_STATES_TOPIC} with the images')
    return RecordingTopics(image, camera_info, joint_states)


def _message_stamps(reader, bag_path: Path, topic: str) -> np.ndarray:
    """Header stamps (log time when a header has none) of a topic's messages, in bag order."""
    stamps = []
    connections = [c for c in reader.connections if c.topic == topic]
    for connection, log_time, raw in bag_messages(reader, connections, bag_path):
        try:
            stamps.append(_stamp_ns(reader.deserialize(raw, connection.msgtype), log_time))
        except Exception:   # noqa: BLE001 - an undeserializable image is skipped when read
            continue
    return np.asarray(stamps, dtype=np.int64)


def _span_s(stamps_ns: np.ndarray) -> str:
    return f'{stamps_ns.min() / NS_PER_S:.3f}..{stamps_ns.max() / NS_PER_S:.3f} s'


def plan_recording(bag_path: str | os.PathLike, joint_names, image_topic: str | None = None,
                   camera_info_topic: str | None = None, joint_states_topic: str | None = None,
                   tolerance_s: float = 0.05) -> RecordingPlan:
    """Open the bag, find its topics, read its joint states and image stamps, and check that
    some image has a joint state within ``tolerance_s``. Raises FileNotFoundError, BagReadError
    (unreadable, damaged, or a topic missing) or ValueError (no stamps match), each one line."""
    bag_path = Path(bag_path)
    reader = open_bag(bag_path)
    try:
        topics = find_recording_topics(reader, bag_path, image_topic, camera_info_topic,
                                       joint_states_topic)
        joint_stamps, joint_values = _read_joint_states(
            reader, topics.joint_states,
            bag_messages(reader, [c for c in reader.connections
                                  if c.topic == topics.joint_states], bag_path),
            list(joint_names))
        image_stamps = _message_stamps(reader, bag_path, topics.image)
    finally:
        reader.close()
    if image_stamps.size == 0:
        raise BagReadError(f'{bag_path}: no messages on the image topic {topics.image}')
    plan = RecordingPlan(bag_path, topics, list(joint_names), joint_stamps, joint_values,
                         image_stamps, int(round(tolerance_s * NS_PER_S)))
    if plan.frames_matched == 0:
        raise ValueError(
            f'no image on {topics.image} ({image_stamps.size}, stamped {_span_s(image_stamps)}) '
            f'is within {tolerance_s} s of a joint state on {topics.joint_states} (stamped '
            f'{_span_s(joint_stamps)}); were they recorded from the same clock?')
    return plan


@dataclass
class RecordingEstimates:
    """A recording estimated frame by frame: the series to calibrate from (measured joints, in
    stamp order), each frame's Estimate and intrinsics (same order), and what was skipped."""

    plan: RecordingPlan
    series: EstimateSeries
    estimates: list
    intrinsics: list
    counts: RecordingCounts


def _detected_keypoints(estimates: list, intrinsics: np.ndarray) -> dict:
    """The series' keypoint fields from the estimates (empty when an estimator gives none)."""
    detected = [e.keypoints_2d_detected_px for e in estimates]
    confidence = [e.keypoint_confidence for e in estimates]
    if any(d is None for d in detected + confidence) \
            or len({np.shape(d) for d in detected}) != 1:
        return {}
    return {'keypoints_2d_px': np.stack(detected).astype(np.float64),
            'keypoint_confidence': np.stack(confidence).astype(np.float64),
            'intrinsics': intrinsics.astype(np.float64)}


def estimate_recording_bag(plan: RecordingPlan, estimator: PoseEstimator, track: bool = True,
                           progress: bool = True, **options) -> RecordingEstimates:
    """Estimate every image that has a joint state, frame by frame as the node does (measured
    joints given, tracking), with a progress bar on a terminal. ``options`` go to every
    ``estimate`` call. The series' joint angles are the measured ones."""
    from tqdm import tqdm

    counts = RecordingCounts(images=int(plan.image_stamps_ns.size))
    stats = BagReadStats()
    stamps, joints, intrinsics = [], [], []

    def frames():
        for frame in iter_bag_images(plan.bag_path, plan.topics.image, plan.topics.camera_info,
                                     stats=stats):
            measured = plan.joints_at(frame.stamp_ns)
            if measured is None:
                counts.without_joint_state += 1
                continue
            stamps.append(frame.stamp_ns)
            joints.append(measured)
            intrinsics.append(frame.K)
            yield frame.image_rgb, frame.K, measured

    estimates = list(tqdm(iter_recording_estimates(estimator, frames(), track, **options),
                          total=plan.frames_matched, desc='estimating', unit='frame',
                          disable=None if progress else True))
    counts.estimated, counts.undecodable = len(estimates), stats.skipped
    if not estimates:
        raise BagReadError(f'{plan.bag_path}: none of the {counts.images} images on '
                           f'{plan.topics.image} could be decoded')
    order = np.argsort(np.asarray(stamps, dtype=np.int64), kind='stable')
    estimates = [estimates[i] for i in order]
    series = EstimateSeries(
        stamps_ns=np.asarray(stamps, dtype=np.int64)[order],
        T_cam_base=np.stack([e.T_cam_base for e in estimates]).astype(np.float64),
        consistency=np.array([e.consistency for e in estimates], dtype=np.float64),
        joint_angles_rad=np.stack(joints)[order], joint_names=list(plan.joint_names),
        **_detected_keypoints(estimates, np.stack(intrinsics)[order]))
    return RecordingEstimates(plan, series, estimates, [intrinsics[i] for i in order], counts)


def estimate_recording_file(bag_path: str | os.PathLike, model: str | os.PathLike | None = None,
                            estimator_factory: str = '', backend: str = 'auto',
                            device: str = 'cpu', image_topic: str | None = None,
                            camera_info_topic: str | None = None,
                            joint_states_topic: str | None = None, tolerance_s: float = 0.05
                            ) -> tuple[RecordingEstimates, PoseEstimator]:
    """Check a recording, build the estimator (``estimator_factory`` 'module:callable', '' =
    the project's, on ``model``, default the bundled one) and estimate every frame. The bag is
    checked before the model loads (tens of seconds): a wrong bag fails at once. Returns the
    estimates and the estimator."""
    from robotag_ros.bundled import default_model_path
    from robotag_ros.inference.factory import build_estimator, load_factory
    from robotag_ros.model.artifact import load_sidecar

    model = str(model or default_model_path())
    factory = load_factory(estimator_factory)

    def build():
        return build_estimator(factory, model, backend, device, '')
    built = build() if estimator_factory else None
    joint_names = built.joint_names if built else load_sidecar(model).joint_names
    plan = plan_recording(bag_path, joint_names, image_topic, camera_info_topic,
                          joint_states_topic, tolerance_s)
    built = built or build()
    # the project's Estimator need not build the 3D branch's point cloud for calibration
    options = {} if estimator_factory else {'with_points': False}
    return estimate_recording_bag(plan, built, **options), built
