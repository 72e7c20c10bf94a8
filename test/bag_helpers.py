"""Test helpers: a rosbag2 written message by message with rosbags (no ROS install needed), and
a bag damaged mid-file the way storage readers skip over without an error."""
import struct
from pathlib import Path

from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

_MCAP_MESSAGE, _MCAP_CHUNK = 0x05, 0x06


def write_messages_bag(path, messages, storage: str = 'sqlite3'):
    """A bag from (topic, msgtype, stamp_ns, message) tuples; returns ``path``."""
    typestore = get_typestore(Stores.ROS2_JAZZY)
    plugin = {'sqlite3': StoragePlugin.SQLITE3, 'mcap': StoragePlugin.MCAP}[storage]
    with Writer(path, version=8, storage_plugin=plugin) as writer:
        connections = {}
        for topic, msgtype, stamp, message in messages:
            if topic not in connections:
                connections[topic] = writer.add_connection(topic, msgtype, typestore=typestore)
            writer.write(connections[topic], stamp, typestore.serialize_cdr(message, msgtype))
    return path


def _mcap_message_offsets(data: bytes) -> list[int]:
    """File offsets of every Message record (top level, or in uncompressed chunks)."""
    offsets, position = [], 8                       # after the magic
    while position + 9 <= len(data) - 8:
        opcode, (length,) = data[position], struct.unpack_from('<Q', data, position + 1)
        if opcode == _MCAP_MESSAGE:
            offsets.append(position)
        elif opcode == _MCAP_CHUNK:
            body = position + 9 + 8 + 8 + 8 + 4    # start/end time, size, crc
            (name_length,) = struct.unpack_from('<I', data, body)
            compression = data[body + 4:body + 4 + name_length]
            body += 4 + name_length
            (records_length,) = struct.unpack_from('<Q', data, body)
            inner, end = body + 8, body + 8 + records_length
            while compression == b'' and inner < end:
                if data[inner] == _MCAP_MESSAGE:
                    offsets.append(inner)
                (inner_length,) = struct.unpack_from('<Q', data, inner + 1)
                inner += 9 + inner_length
        position += 9 + length
    return offsets


def damage_mcap_mid_file(bag_dir, fraction: float = 0.5) -> int:
    """Overwrite the record type of the middle ``fraction`` of an MCAP bag's messages with an
    unknown one: readers skip such records (as the MCAP spec says), so the bag reads short
    without an error. Returns how many messages were hidden."""
    path = next(Path(bag_dir).glob('*.mcap'))
    data = bytearray(path.read_bytes())
    offsets = _mcap_message_offsets(bytes(data))
    count = int(len(offsets) * fraction)
    start = (len(offsets) - count) // 2
    for offset in offsets[start:start + count]:
        data[offset] = 0x80
    path.write_bytes(bytes(data))
    return count
