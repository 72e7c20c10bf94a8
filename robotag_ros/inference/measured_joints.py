"""Measured joint states matched to images by stamp: the joints a robot's encoders report, for
estimating only the camera (markerless hand-eye calibration)."""
from __future__ import annotations

from collections import deque

import numpy as np

from robotag_ros.stamps import NS_PER_S


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
