"""rosbag2 image source: write tiny bags (sqlite3 and MCAP), read them back, refuse broken ones."""
import logging

import numpy as np
import pytest
import torch

from robotag_ros.data.bags.bag_images import (
    BagImageDataset, BagReadError, BagReadStats, bag_topics, iter_bag_images, load_intrinsics_yaml,
    write_image_bag,
)
from bag_helpers import write_messages_bag

K = np.array([[100.0, 0.0, 16.0], [0.0, 110.0, 12.0], [0.0, 0.0, 1.0]])


def _frames(count=3, height=24, width=32):
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(count)]


@pytest.mark.parametrize('storage', ['sqlite3', 'mcap'])
def test_written_bag_reads_back_exactly(tmp_path, storage):
    frames = _frames()
    bag = write_image_bag(tmp_path / 'bag', frames, K, topic='/cam/image_raw', storage=storage)
    assert bag_topics(bag) == {'/cam/image_raw': 'sensor_msgs/msg/Image',
                               '/cam/camera_info': 'sensor_msgs/msg/CameraInfo'}
    read = list(iter_bag_images(bag, '/cam/image_raw'))
    assert len(read) == 3
    for frame, item in zip(frames, read):
        np.testing.assert_array_equal(item.image_rgb, frame)
        np.testing.assert_allclose(item.K, K)
        assert item.frame_id == 'camera_color_optical_frame'
    assert read[1].stamp_ns - read[0].stamp_ns == 100_000_000


def _messages_of(bag):
    """Deserialised (topic, msgtype, stamp, message) of a bag written by write_image_bag."""
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    with AnyReader([bag], default_typestore=get_typestore(Stores.ROS2_JAZZY)) as reader:
        return [(c.topic, c.msgtype, t, reader.deserialize(raw, c.msgtype))
                for c, t, raw in reader.messages()]


def test_camera_info_is_paired_by_nearest_earlier_stamp(tmp_path):
    K2 = K * np.array([[2.0], [2.0], [1.0]])
    frames = _frames(3)
    images = [m for m in _messages_of(write_image_bag(tmp_path / 'a', frames, K,
                                                      stamps_ns=[5, 20, 30]))
              if m[0] == '/camera/image_raw']
    infos = [m for m in _messages_of(write_image_bag(tmp_path / 'b', frames[:1], K,
                                                     stamps_ns=[10]))
             + _messages_of(write_image_bag(tmp_path / 'c', frames[:1], K2, stamps_ns=[25]))
             if m[0] == '/camera/camera_info']
    bag = write_messages_bag(tmp_path / 'mixed', sorted(images + infos, key=lambda m: m[2]))
    Ks = [item.K for item in iter_bag_images(bag, '/camera/image_raw')]
    # image at 5 is older than every CameraInfo: the first one; 20 -> info at 10; 30 -> info at 25
    assert np.allclose(Ks[0], K) and np.allclose(Ks[1], K) and np.allclose(Ks[2], K2)


def test_dataset_gives_an_unlabelled_batch_dict_with_letterboxed_K(tmp_path):
    bag = write_image_bag(tmp_path / 'bag', _frames(4), K, storage='mcap')
    dataset = BagImageDataset(bag, '/camera/image_raw', image_size_hw=(12, 8), num_joints=7,
                              num_keypoints=5, stride=2)
    assert len(dataset) == 2
    sample = dataset[1]
    assert sample['image'].shape == (3, 12, 8) and sample['image'].dtype == torch.float32
    assert 0.0 <= sample['image'].min() and sample['image'].max() <= 1.0
    # 32x24 letterboxed into 8x12: uniform scale 1/4 (6 rows of image), 3 rows padded on top.
    torch.testing.assert_close(sample['K'], torch.tensor([[25.0, 0.0, 4.0], [0.0, 27.5, 6.0],
                                                          [0.0, 0.0, 1.0]]))
    assert sample['joint_angles'].shape == (7,) and sample['keypoints_2d'].shape == (5, 2)
    assert sample['mask'].shape == (1, 12, 8)
    assert not any(bool(v) for k, v in sample.items() if k.startswith('has_'))
    batch = torch.utils.data.default_collate([dataset[0], dataset[1]])
    assert batch['image'].shape == (2, 3, 12, 8) and batch['has_depth'].shape == (2,)


def test_fallback_intrinsics_from_yaml_when_the_bag_has_no_camera_info(tmp_path):
    bag = write_image_bag(tmp_path / 'bag', _frames(1), K, camera_info_topic='/other/info')
    calib = tmp_path / 'camera.yaml'
    calib.write_text('camera_matrix:\n  rows: 3\n  cols: 3\n'
                     '  data: [50, 0, 8, 0, 50, 6, 0, 0, 1]\n')
    # '/other/info' does not sit beside the image topic, but it is the bag's only CameraInfo.
    assert np.allclose(next(iter_bag_images(bag, '/camera/image_raw')).K, K)
    assert load_intrinsics_yaml(calib)[0, 0] == 50.0
    with pytest.raises(BagReadError, match="'/nope'.*it has: /camera/image_raw"):
        next(iter_bag_images(bag, '/camera/image_raw', camera_info_topic='/nope'))


def test_missing_topic_names_what_is_there(tmp_path):
    bag = write_image_bag(tmp_path / 'bag', _frames(1), K)
    with pytest.raises(BagReadError, match=r"'/rgb' is not in .*/camera/image_raw "
                                           r"\(sensor_msgs/msg/Image\)"):
        list(iter_bag_images(bag, '/rgb'))
    with pytest.raises(BagReadError, match='not one of'):
        list(iter_bag_images(bag, '/camera/camera_info'))


def test_missing_bag_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='no_such_bag'):
        list(iter_bag_images(tmp_path / 'no_such_bag', '/camera/image_raw'))


@pytest.mark.parametrize('storage', ['sqlite3', 'mcap'])
def test_truncated_bag_gives_a_clear_error(tmp_path, storage):
    bag = write_image_bag(tmp_path / 'bag', _frames(3), K, storage=storage)
    data_file = next(p for p in bag.iterdir() if p.suffix in ('.db3', '.mcap'))
    data_file.write_bytes(data_file.read_bytes()[: data_file.stat().st_size // 3])
    with pytest.raises(BagReadError, match='bag'):
        list(iter_bag_images(bag, '/camera/image_raw'))


def test_bag_read_short_of_its_metadata_is_refused(tmp_path):
    from bag_helpers import damage_mcap_mid_file
    bag = write_image_bag(tmp_path / 'bag', _frames(6), K, storage='mcap')
    damage_mcap_mid_file(bag, fraction=0.5)
    with pytest.raises(BagReadError, match=r'is damaged: read \d+ of the 6 messages its '
                                           r'metadata lists on /camera/'):
        list(iter_bag_images(bag, '/camera/image_raw'))


def test_undecodable_image_is_skipped_counted_and_warned(tmp_path, caplog):
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import Stores, get_typestore

    typestore = get_typestore(Stores.ROS2_JAZZY)
    CompressedImage = typestore.types['sensor_msgs/msg/CompressedImage']
    Header = typestore.types['std_msgs/msg/Header']
    Time = typestore.types['builtin_interfaces/msg/Time']
    import cv2
    good = cv2.imencode('.png', _frames(1)[0][:, :, ::-1])[1].reshape(-1)
    with Writer(tmp_path / 'bag', version=8) as writer:
        connection = writer.add_connection('/cam/image/compressed',
                                           CompressedImage.__msgtype__, typestore=typestore)
        for i, data in enumerate([good, np.frombuffer(b'not a png', np.uint8), good]):
            message = CompressedImage(header=Header(stamp=Time(sec=1, nanosec=i), frame_id='c'),
                                      format='png', data=data)
            writer.write(connection, 1 + i, typestore.serialize_cdr(message,
                                                                    CompressedImage.__msgtype__))
    stats = BagReadStats()
    with caplog.at_level(logging.WARNING):
        read = list(iter_bag_images(tmp_path / 'bag', '/cam/image/compressed', K=K, stats=stats))
    assert len(read) == 2 and stats.decoded == 2 and stats.skipped_undecodable == 1
    np.testing.assert_array_equal(read[0].image_rgb, _frames(1)[0])
    assert 'skipped 1 of 3' in caplog.text
    with pytest.raises(ValueError, match='no usable CameraInfo'):
        list(iter_bag_images(tmp_path / 'bag', '/cam/image/compressed'))


def test_writer_refuses_to_overwrite(tmp_path):
    bag = write_image_bag(tmp_path / 'bag', _frames(1), K)
    with pytest.raises(FileExistsError):
        write_image_bag(bag, _frames(1), K)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith('.')]


def test_image_folder_dataset_letterboxes_and_skips_unreadable_files(tmp_path):
    import cv2

    from robotag_ros.data.bags.unlabelled import ImageFolderDataset
    folder = tmp_path / 'images'
    folder.mkdir()
    for index, frame in enumerate(_frames(3)):
        cv2.imwrite(str(folder / f'{index:03d}.png'), frame[..., ::-1])
    (folder / '001.png').write_bytes(b'not a png')
    dataset = ImageFolderDataset(folder, K, (12, 8), num_joints=7, num_keypoints=5)
    assert len(dataset) == 3
    sample = dataset[1]                       # unreadable: replaced by the next image
    assert dataset.unreadable == [str(folder / '001.png')]
    assert sample['image'].shape == (3, 12, 8)
    torch.testing.assert_close(sample['K'], torch.tensor([[25.0, 0.0, 4.0], [0.0, 27.5, 6.0],
                                                          [0.0, 0.0, 1.0]]))
    with pytest.raises(ValueError, match='intrinsics'):
        ImageFolderDataset(folder, None, (12, 8), 7, 5)
