"""Helpers for the inference/export tests: a tiny artifact (no training) and sample frames."""
from pathlib import Path

import numpy as np
import torch

SAMPLE = Path(__file__).parent / 'data' / 'dream_panda_sample'
# Tiny on purpose: the tests check wiring and numbers, not accuracy. 96x96 with a 4:3 camera
# exercises the letterbox padding.
TINY_CONFIG = dict(width_2d=8, width_3d=8, head_width=16, num_unproj_points=64)
INPUT_HW = (96, 96)


def make_tiny_artifact(path: Path, robot, seed: int = 0, training: dict | None = None,
                       preprocessing=None, fit: dict | None = None,
                       **config_overrides) -> Path:
    """Write ``<path>.safetensors`` + ``<path>.yaml`` for a randomly initialised tiny TAGModel
    (``preprocessing``: an ImagePreprocessing for the sidecar, else the backbone's; ``fit``:
    the sidecar's fit section)."""
    from robotag_ros.model.artifact import Sidecar, save_artifact
    from robotag_ros.model import build_model
    from robotag_ros.model.config import ModelConfig
    torch.manual_seed(seed)
    config = ModelConfig(**dict(TINY_CONFIG, **config_overrides))
    model = build_model(robot, config)
    sidecar = Sidecar(robot=robot.name, joint_names=list(robot.joint_names),
                      keypoint_names=list(robot.keypoint_names), input_size=list(INPUT_HW),
                      model_config=config.to_dict(), training=dict(training or {}),
                      preprocessing=preprocessing, fit=dict(fit or {}))
    save_artifact(path, model.state_dict(), sidecar)
    return path


def artifact_with_sidecar_changes(artifact: Path, path: Path, **changes) -> Path:
    """A copy of ``artifact`` at ``path`` whose sidecar has ``changes`` (a broken one, say)."""
    import shutil

    import yaml
    for suffix in ('.safetensors', '.yaml'):
        shutil.copy(artifact.with_suffix(suffix), path.with_suffix(suffix))
    sidecar = yaml.safe_load(path.with_suffix('.yaml').read_text())
    path.with_suffix('.yaml').write_text(yaml.safe_dump(dict(sidecar, **changes)))
    return path


def sample_frames(robot, count: int = 2):
    from robotag_ros.export.reference_frames import frames_from_dream
    return frames_from_dream(SAMPLE, robot, count)


def pinhole(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
