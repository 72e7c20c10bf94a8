"""Where the bundled default model and sample bag are: in a source checkout or an installed share.

ROS-free (ament_index_python is imported only when the checkout has no such file), so the demo
and tests can ask before any rclpy process starts.
"""
from __future__ import annotations

from pathlib import Path

PACKAGE = 'robotag_ros'
DEFAULT_MODEL_NAME = 'panda_default'      # models/panda_default.{safetensors,yaml}
SAMPLE_BAG_NAME = 'panda_sample_bag'      # test/data/panda_sample_bag (rosbag2, MCAP)
CHECKOUT_ROOT = Path(__file__).resolve().parents[1]


def _share_dir() -> Path | None:
    try:
        from ament_index_python.packages import (PackageNotFoundError,
                                                 get_package_share_directory)
    except ImportError:
        return None
    try:
        return Path(get_package_share_directory(PACKAGE))
    except (PackageNotFoundError, ValueError, LookupError, OSError):
        # OSError: AMENT_PREFIX_PATH unset (no ROS environment at all).
        return None


def default_model_path() -> Path:
    """The bundled default artifact (no suffix): the checkout's models/ first, then the share.

    Returns the checkout path when neither holds it, so an error names where it was expected.
    """
    checkout = CHECKOUT_ROOT / 'models' / DEFAULT_MODEL_NAME
    if _is_artifact(checkout):
        return checkout
    share = _share_dir()
    installed = share / 'models' / DEFAULT_MODEL_NAME if share else None
    return installed if installed and _is_artifact(installed) else checkout


def default_dr_config_path() -> Path:
    """The default domain randomisation the bundled model was trained on
    (config/synth/dr_default.yaml): the checkout's first, then the share."""
    relative = Path('config') / 'synth' / 'dr_default.yaml'
    share = _share_dir()
    if not (CHECKOUT_ROOT / relative).is_file() and share and (share / relative).is_file():
        return share / relative
    return CHECKOUT_ROOT / relative


def _is_artifact(path: Path) -> bool:
    return path.with_suffix('.yaml').is_file() and path.with_suffix('.safetensors').is_file()


def has_default_model() -> bool:
    """True when both files of the default artifact exist."""
    return _is_artifact(default_model_path())


def sample_bag_path() -> Path:
    """The sample rosbag2 folder: the checkout's test/data/ first, then the share's sample/."""
    checkout = CHECKOUT_ROOT / 'test' / 'data' / SAMPLE_BAG_NAME
    if (checkout / 'metadata.yaml').is_file():
        return checkout
    share = _share_dir()
    installed = share / 'sample' / SAMPLE_BAG_NAME if share else None
    return installed if installed and (installed / 'metadata.yaml').is_file() else checkout
