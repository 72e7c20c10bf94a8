"""ROS time stamps <-> integer nanoseconds, and the text key that matches outputs to frames.

Works on any object with ``sec`` and ``nanosec`` (rclpy's and the rosbags library's
builtin_interfaces/Time alike), so the core reads bags without rclpy.
"""
from __future__ import annotations

NS_PER_S = 1_000_000_000


def stamp_to_ns(stamp) -> int:
    """builtin_interfaces/Time -> nanoseconds."""
    return int(stamp.sec) * NS_PER_S + int(stamp.nanosec)


def ns_to_sec_nanosec(stamp_ns: int) -> tuple[int, int]:
    """Nanoseconds -> (sec, nanosec), the two fields of builtin_interfaces/Time."""
    return divmod(int(stamp_ns), NS_PER_S)


def stamp_key(stamp_ns: int) -> str:
    """'sec.nanosec' text: how the demo, the sample run and the tests key a frame's outputs."""
    sec, nanosec = ns_to_sec_nanosec(stamp_ns)
    return f'{sec}.{nanosec:09d}'
