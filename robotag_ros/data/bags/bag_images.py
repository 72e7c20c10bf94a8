"""Unlabelled camera images from rosbag2 files (sqlite3 or MCAP) via ``rosbags``: no ROS install.

Images come from one topic (``sensor_msgs/Image`` or ``sensor_msgs/CompressedImage``), each paired
with the intrinsics of the bag's ``CameraInfo`` with the nearest earlier stamp (the first one for
images older than every CameraInfo), or with a fallback K given explicitly or as a ROS
camera-calibration YAML. :class:`BagImageDataset` serves them as the training batch dict with every
label absent (stage-2 alignment training). :func:`write_image_bag` writes such a bag (tests, demo).
"""
from __future__ import annotations

import logging
import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from robotag_ros.data.bags.unlabelled import letterbox_frame
from robotag_ros.data.bags.unlabelled import unlabelled_sample
from robotag_ros.stamps import ns_to_sec_nanosec, stamp_to_ns

LOGGER = logging.getLogger(__name__)

IMAGE_TYPES = ('sensor_msgs/msg/Image', 'sensor_msgs/msg/CompressedImage')
CAMERA_INFO_TYPE = 'sensor_msgs/msg/CameraInfo'


class BagReadError(RuntimeError):
    """A rosbag2 that cannot be opened, or lacks what was asked for."""


@dataclass
class BagImage:
    """One decoded image with its intrinsics."""

    stamp_ns: int              # header stamp (the bag's receive time when the header has none)
    image_rgb: np.ndarray      # (H, W, 3) uint8 RGB
    K: np.ndarray              # (3, 3) float64 intrinsics of this image, pixels
    frame_id: str


@dataclass
class BagReadStats:
    """What happened to the messages of the image topic."""

    decoded: int = 0
    skipped_undecodable: int = 0
    skipped_size_mismatch: int = 0     # image size differs from its CameraInfo's width/height

    @property
    def skipped(self) -> int:
        return self.skipped_undecodable + self.skipped_size_mismatch


def load_intrinsics_yaml(path: str | os.PathLike) -> np.ndarray:
    """K (3, 3) from a ROS camera-calibration YAML (``camera_matrix: {rows, cols, data}``)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
        K = np.asarray(data['camera_matrix']['data'], dtype=np.float64).reshape(3, 3)
    except FileNotFoundError:
        raise FileNotFoundError(f'intrinsics file not found: {path}') from None
    except (yaml.YAMLError, KeyError, TypeError, ValueError) as err:
        raise ValueError(f'{path}: no 3x3 camera_matrix.data in this YAML ({err})') from None
    return K


def _stamp_ns(message, log_time_ns: int) -> int:
    stamp_ns = stamp_to_ns(message.header.stamp)
    return stamp_ns if stamp_ns > 0 else int(log_time_ns)


def open_bag(bag_path: Path):
    """Open a rosbag2 (Jazzy typestore as default); errors name the bag and what is wrong."""
    from rosbags.highlevel import AnyReader, AnyReaderError
    from rosbags.typesys import Stores, get_typestore

    if not bag_path.exists():
        raise FileNotFoundError(f'rosbag2 not found: {bag_path}')
    reader = AnyReader([bag_path], default_typestore=get_typestore(Stores.ROS2_JAZZY))
    try:
        reader.open()
    except AnyReaderError as err:
        raise BagReadError(f'cannot read rosbag2 {bag_path}: {err}') from None
    except Exception as err:  # storage back ends raise their own types (sqlite3, mcap, yaml)
        raise BagReadError(
            f'cannot read rosbag2 {bag_path}: {type(err).__name__}: {err}') from None
    return reader


def bag_messages(reader, connections, bag_path: Path, allow_damaged: bool = False,
                 problems: list[str] | None = None):
    """The reader's messages. A bag that breaks part-way (truncated file) raises BagReadError;
    so does one that ends without error but short of the message count its metadata lists for
    these connections (a damaged file that the storage reader skips over silently). With
    ``allow_damaged`` either ends the messages instead: the shortfall is logged as a warning and
    appended to ``problems``."""
    messages = reader.messages(connections=connections)
    expected = sum(int(getattr(c, 'msgcount', 0) or 0) for c in connections)
    topics = ', '.join(sorted({c.topic for c in connections}))
    count, text = 0, None
    while True:
        try:
            item = next(messages)
        except StopIteration:
            break
        except Exception as err:  # sqlite3 / mcap errors on a damaged file
            text = (f'rosbag2 {bag_path} is damaged after {count} messages on {topics}: '
                    f'{type(err).__name__}: {err}')
            break
        count += 1
        yield item
    if text is None and count < expected:
        text = (f'rosbag2 {bag_path} is damaged: read {count} of the {expected} messages its '
                f'metadata lists on {topics}')
    if text is not None:
        if not allow_damaged:
            raise BagReadError(text)
        LOGGER.warning('%s; going on with the %d messages read, as asked', text, count)
        if problems is not None:
            problems.append(text)


def _describe_topics(reader) -> str:
    return ', '.join(f'{name} ({info.msgtype})' for name, info in sorted(reader.topics.items()))


def bag_topics(bag_path: str | os.PathLike) -> dict[str, str]:
    """Topic name -> message type of every topic in a rosbag2."""
    reader = open_bag(Path(bag_path))
    try:
        return {name: info.msgtype for name, info in reader.topics.items()}
    finally:
        reader.close()


def _camera_info_topic_for(reader, image_topic: str) -> str | None:
    """The CameraInfo topic beside the image topic (``<ns>/camera_info``), else the only one."""
    infos = [name for name, info in reader.topics.items() if info.msgtype == CAMERA_INFO_TYPE]
    namespace = image_topic.rsplit('/', 1)[0]
    for candidate in (f'{namespace}/camera_info', f'{namespace.rsplit("/", 1)[0]}/camera_info'):
        if candidate in infos:
            return candidate
    return infos[0] if len(infos) == 1 else None


def _read_camera_infos(reader, topic: str,
                       bag_path: Path) -> tuple[np.ndarray, list[np.ndarray], list]:
    stamps, Ks, sizes = [], [], []
    connections = [c for c in reader.connections if c.topic == topic]
    for connection, log_time, raw in bag_messages(reader, connections, bag_path):
        try:
            message = reader.deserialize(raw, connection.msgtype)
        except Exception as err:  # a broken CameraInfo is skipped like a broken image
            LOGGER.warning('skipping an undecodable CameraInfo on %s: %s', topic, err)
            continue
        K = np.asarray(message.k, dtype=np.float64).reshape(3, 3)
        if K[0, 0] <= 0 or K[1, 1] <= 0:
            continue  # an uncalibrated camera publishes K = 0
        stamps.append(_stamp_ns(message, log_time))
        Ks.append(K)
        sizes.append((int(message.height), int(message.width)))
    order = np.argsort(stamps, kind='stable')
    return (np.asarray(stamps, dtype=np.int64)[order], [Ks[i] for i in order],
            [sizes[i] for i in order])


def iter_bag_images(bag_path: str | os.PathLike, image_topic: str,
                    camera_info_topic: str | None = None, K: np.ndarray | None = None,
                    intrinsics_yaml: str | os.PathLike | None = None,
                    stats: BagReadStats | None = None) -> Iterator[BagImage]:
    """Yield the images of ``image_topic`` in bag order, decoded to RGB, with their intrinsics.

    camera_info_topic: None looks for ``<namespace>/camera_info`` or the bag's only CameraInfo
    topic. K / intrinsics_yaml: used when the bag has no usable CameraInfo. Undecodable messages
    are skipped, counted in ``stats`` and logged once at the end.
    Raises FileNotFoundError (no bag), BagReadError (unreadable bag, or topic not in the bag:
    the message lists the topics that are there), ValueError (no intrinsics anywhere).
    """
    from rosbags.image import message_to_cvimage

    bag_path = Path(bag_path)
    stats = stats if stats is not None else BagReadStats()
    fallback_K = (np.asarray(K, dtype=np.float64).reshape(3, 3) if K is not None
                  else load_intrinsics_yaml(intrinsics_yaml) if intrinsics_yaml else None)
    reader = open_bag(bag_path)
    try:
        topics = reader.topics
        if image_topic not in topics:
            raise BagReadError(f'topic {image_topic!r} is not in {bag_path}; it has: '
                               f'{_describe_topics(reader)}')
        if topics[image_topic].msgtype not in IMAGE_TYPES:
            raise BagReadError(f'topic {image_topic!r} in {bag_path} holds '
                               f'{topics[image_topic].msgtype}, not one of {IMAGE_TYPES}')
        if camera_info_topic is None:
            camera_info_topic = _camera_info_topic_for(reader, image_topic)
        elif camera_info_topic not in topics:
            raise BagReadError(f'CameraInfo topic {camera_info_topic!r} is not in {bag_path}; '
                               f'it has: {_describe_topics(reader)}')
        info_stamps, info_Ks, info_sizes = (_read_camera_infos(reader, camera_info_topic, bag_path)
                                            if camera_info_topic else (np.zeros(0), [], []))
        if not info_Ks and fallback_K is None:
            raise ValueError(f'{bag_path}: no usable CameraInfo for {image_topic!r} and no '
                             f'fallback K or intrinsics YAML given')

        connections = [c for c in reader.connections if c.topic == image_topic]
        for connection, log_time, raw in bag_messages(reader, connections, bag_path):
            try:
                message = reader.deserialize(raw, connection.msgtype)
                image = np.ascontiguousarray(message_to_cvimage(message, 'rgb8'))
                if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                    raise ValueError(f'decoded to {image.shape} {image.dtype}, not RGB uint8')
            except Exception as err:  # decoder errors come in many types; one bad frame is skipped
                stats.skipped_undecodable += 1
                LOGGER.debug('undecodable message on %s at %d: %s', image_topic, log_time, err)
                continue
            stamp = _stamp_ns(message, log_time)
            if info_Ks:
                index = max(int(np.searchsorted(info_stamps, stamp, side='right')) - 1, 0)
                K_image, size = info_Ks[index], info_sizes[index]
                if size != (0, 0) and size != image.shape[:2]:
                    stats.skipped_size_mismatch += 1
                    continue
            else:
                K_image = fallback_K
            stats.decoded += 1
            yield BagImage(stamp_ns=stamp, image_rgb=image, K=K_image.copy(),
                           frame_id=str(message.header.frame_id))
    finally:
        reader.close()
        if stats.skipped:
            LOGGER.warning('%s %s: skipped %d of %d images (%d undecodable, %d not the size '
                           'of their CameraInfo)', bag_path, image_topic, stats.skipped,
                           stats.skipped + stats.decoded, stats.skipped_undecodable,
                           stats.skipped_size_mismatch)


class BagImageDataset:
    """A torch Dataset of a bag's images as unlabelled training samples.

    Each item is the training batch dict for one sample: ``image`` (3, H, W) float32 RGB in [0, 1]
    letterboxed to ``image_size_hw`` exactly as the estimator preprocesses frames, ``K`` (3, 3)
    adjusted to match, every label zero and every ``has_*`` False. The images are decoded once
    and held letterboxed as uint8
    (H * W * 3 bytes each); ``stride`` and ``max_frames`` bound that for long bags.
    """

    def __init__(self, bag_path: str | os.PathLike, image_topic: str,
                 image_size_hw: Sequence[int], num_joints: int, num_keypoints: int,
                 camera_info_topic: str | None = None, K: np.ndarray | None = None,
                 intrinsics_yaml: str | os.PathLike | None = None, stride: int = 1,
                 max_frames: int | None = None):
        import torch

        if stride < 1:
            raise ValueError(f'stride must be >= 1, got {stride}')
        self.image_size_hw = (int(image_size_hw[0]), int(image_size_hw[1]))
        self.num_joints, self.num_keypoints = int(num_joints), int(num_keypoints)
        self.stats = BagReadStats()
        images, Ks, stamps = [], [], []
        frames = iter_bag_images(bag_path, image_topic, camera_info_topic, K, intrinsics_yaml,
                                 self.stats)
        for index, frame in enumerate(frames):
            if index % stride:
                continue
            image, K_network = letterbox_frame(frame.image_rgb, frame.K, self.image_size_hw)
            images.append(image)
            Ks.append(torch.as_tensor(K_network))
            stamps.append(frame.stamp_ns)
            if max_frames is not None and len(images) >= max_frames:
                break
        if not images:
            raise BagReadError(f'no decodable images on {image_topic!r} in {bag_path} '
                               f'({self.stats.skipped} skipped)')
        self._images = np.stack(images)                     # (N, H, W, 3) uint8
        self._Ks = torch.stack(Ks)                          # (N, 3, 3)
        self.stamps_ns = np.asarray(stamps, dtype=np.int64)

    def __len__(self) -> int:
        return len(self._images)

    def __getitem__(self, index: int) -> dict:
        return unlabelled_sample(self._images[index], self._Ks[index].numpy(), self.num_joints,
                                 self.num_keypoints)


@contextlib.contextmanager
def staged_bag_writer(path: str | os.PathLike, storage: str = 'sqlite3'):
    """A rosbags Writer (rosbag2 format 8) on a temporary folder beside ``path``, renamed onto
    ``path`` only when the block ends without error: a reader never sees half a bag, and an
    existing ``path`` is refused. Yields (writer, Jazzy typestore). storage: sqlite3 | mcap."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    plugins = {'sqlite3': StoragePlugin.SQLITE3, 'mcap': StoragePlugin.MCAP}
    if storage not in plugins:
        raise ValueError(f'storage must be one of {sorted(plugins)}, got {storage!r}')
    path = Path(path)
    if path.exists():
        raise FileExistsError(f'refusing to overwrite {path}')
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f'.{path.name}.', dir=path.parent))
    bag_dir = staging / path.name
    try:
        with Writer(bag_dir, version=8, storage_plugin=plugins[storage]) as writer:
            yield writer, get_typestore(Stores.ROS2_JAZZY)
        os.replace(bag_dir, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def camera_info_message(typestore, header, K: np.ndarray, width: int, height: int):
    """A rosbags ``sensor_msgs/CameraInfo`` for an undistorted pinhole camera with intrinsics K."""
    types = typestore.types
    K = np.asarray(K, dtype=np.float64).reshape(3, 3)
    P = np.zeros((3, 4))
    P[:, :3] = K
    return types['sensor_msgs/msg/CameraInfo'](
        header=header, height=height, width=width, distortion_model='plumb_bob',
        d=np.zeros(5), k=K.reshape(-1), r=np.eye(3).reshape(-1), p=P.reshape(-1),
        binning_x=0, binning_y=0,
        roi=types['sensor_msgs/msg/RegionOfInterest'](x_offset=0, y_offset=0, height=0,
                                                      width=0, do_rectify=False))


def write_image_bag(path: str | os.PathLike, frames: Sequence[np.ndarray], K: np.ndarray,
                    topic: str = '/camera/image_raw', storage: str = 'sqlite3',
                    camera_info_topic: str | None = None,
                    frame_id: str = 'camera_color_optical_frame',
                    stamps_ns: Sequence[int] | None = None, period_ns: int = 100_000_000,
                    start_ns: int = 1_700_000_000_000_000_000) -> Path:
    """Write RGB frames (H, W, 3) uint8 as ``sensor_msgs/Image`` (rgb8) + ``CameraInfo`` to a bag.

    storage: 'sqlite3' or 'mcap'. The CameraInfo topic defaults to ``<namespace>/camera_info``;
    one CameraInfo is written with each image, same stamp. The bag is written into a temporary
    folder beside ``path`` and renamed when complete; an existing ``path`` is refused.
    """
    K = np.asarray(K, dtype=np.float64).reshape(3, 3)
    if camera_info_topic is None:
        camera_info_topic = topic.rsplit('/', 1)[0] + '/camera_info'
    if stamps_ns is None:
        stamps_ns = [start_ns + i * period_ns for i in range(len(frames))]
    if len(stamps_ns) != len(frames):
        raise ValueError(f'{len(stamps_ns)} stamps for {len(frames)} frames')

    with staged_bag_writer(path, storage) as (writer, typestore):
        Image = typestore.types['sensor_msgs/msg/Image']
        Header = typestore.types['std_msgs/msg/Header']
        Time = typestore.types['builtin_interfaces/msg/Time']
        camera_info_type = 'sensor_msgs/msg/CameraInfo'
        image_connection = writer.add_connection(topic, Image.__msgtype__, typestore=typestore)
        info_connection = writer.add_connection(camera_info_topic, camera_info_type,
                                                typestore=typestore)
        for frame, stamp in zip(frames, stamps_ns):
            frame = np.ascontiguousarray(frame, dtype=np.uint8)
            if frame.ndim != 3 or frame.shape[2] != 3:
                raise ValueError(f'frames must be (H, W, 3) uint8 RGB, got {frame.shape}')
            height, width = frame.shape[:2]
            sec, nanosec = ns_to_sec_nanosec(stamp)
            header = Header(stamp=Time(sec=sec, nanosec=nanosec), frame_id=frame_id)
            image = Image(header=header, height=height, width=width, encoding='rgb8',
                          is_bigendian=0, step=3 * width, data=frame.reshape(-1))
            info = camera_info_message(typestore, header, K, width, height)
            writer.write(info_connection, int(stamp),
                         typestore.serialize_cdr(info, camera_info_type))
            writer.write(image_connection, int(stamp),
                         typestore.serialize_cdr(image, Image.__msgtype__))
    return Path(path)
