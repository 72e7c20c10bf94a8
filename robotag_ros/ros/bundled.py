"""Where the bundled default model and sample bag are: in a source checkout or an installed share.

ROS-free (ament_index_python is imported only when the checkout has no such file), so the demo
and tests can ask before any rclpy process starts.
"""
from __future__ import annotations

from pathlib import Path

PACKAGE = 'robotag_ros'
DEFAULT_MODEL_NAME = 'panda_default'      # models/panda_default.{safetensors,yaml}
SAMPLE_BAG_NAME = 'panda_sample_bag'      # test/data/panda_sample_bag (rosbag2, MCAP)
CHECKOUT_ROOT = Path(__file__).resolve().parents[2]


def _share_dir() -> Path | None:
    try:
        from ament_index_python.packages import (PackageNotFoundError,
                                                 get_package_share_directory)
    except ImportError:
        return None
    try:
        return Path(get_package_share_directory(PACKAGE))
    except (PackageNotFoundError, ValueError, LookupError):
        return None


def default_model_path() -> Path:
    """The bundled default artifact (no suffix): the checkout's models/ first, then the share.

    Returns the checkout path when neither holds it, so an error names where it was expected.
    """
    candidates = [CHECKOUT_ROOT / 'models' / DEFAULT_MODEL_NAME]
    share = _share_dir()
    if share is not None:
        candidates.append(share / 'models' / DEFAULT_MODEL_NAME)
    for candidate in candidates:
        if candidate.with_suffix('.yaml').is_file() and \
                candidate.with_suffix('.safetensors').is_file():
            return candidate
    return candidates[0]


def has_default_model() -> bool:
    """True when both files of the default artifact exist."""
    path = default_model_path()
    return path.with_suffix('.yaml').is_file() and path.with_suffix('.safetensors').is_file()


def sample_bag_path() -> Path:
    """The sample rosbag2 folder: the checkout's test/data/ first, then the share's sample/."""
    candidates = [CHECKOUT_ROOT / 'test' / 'data' / SAMPLE_BAG_NAME]
    share = _share_dir()
    if share is not None:
        candidates.append(share / 'sample' / SAMPLE_BAG_NAME)
    return next((c for c in candidates if (c / 'metadata.yaml').is_file()), candidates[0])
