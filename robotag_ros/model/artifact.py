"""The inference artifact: weights (safetensors) + a YAML sidecar; written and read only here.

The sidecar holds what a consumer needs to use the weights correctly without guessing: the robot,
its joint and keypoint names, the network input size, the image preprocessing (colour order,
normalisation, letterbox padding), the model configuration, the fit's settings where they differ
from the estimator's defaults, and a hash of the training configuration. The estimator, the
exporter and fine-tuning take preprocessing from it, never from constants.

A sidecar without a ``preprocessing`` section (written before it existed) ran with its 2D
backbone's statistics; its top-level ``color_order``/``mean``/``std`` never described the network
and are ignored.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml
from robotag_ros.atomic_io import atomic_write
from robotag_ros.model.config import ModelConfig
from robotag_ros.model.preprocessing import ImagePreprocessing, backbone_preprocessing

ARTIFACT_FORMAT = 'robotag_ros.artifact/1'
# Top-level fields of sidecars written before the preprocessing section: never read by anything.
_LEGACY_PREPROCESSING_FIELDS = ('color_order', 'mean', 'std')
WEIGHTS_SUFFIX = '.safetensors'
SIDECAR_SUFFIX = '.yaml'


class ArtifactError(RuntimeError):
    """An artifact that is missing, corrupt, or made for another robot."""


@dataclass
class Sidecar:
    """Everything about a set of weights except the weights."""

    robot: str                              # bundled robot name or path to its robot YAML
    joint_names: list[str]
    keypoint_names: list[str]
    input_size: list[int]                   # network input (height, width), pixels
    model_config: dict
    preprocessing: Optional[ImagePreprocessing] = None  # None: the 2D backbone's statistics
    # The fit's settings (inference/fit_settings.py) this model's residuals were judged with;
    # keys left out take the estimator's defaults.
    fit: dict = field(default_factory=dict)
    config_hash: str = ''
    training: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    format: str = ARTIFACT_FORMAT

    def __post_init__(self):
        if isinstance(self.preprocessing, dict):
            self.preprocessing = ImagePreprocessing(**self.preprocessing)
        elif self.preprocessing is None:
            self.preprocessing = backbone_preprocessing(
                str(self.model_config.get('backbone_2d', ModelConfig.backbone_2d)))

    def to_dict(self) -> dict:
        data = {key: getattr(self, key) for key in self.__dataclass_fields__}
        data['preprocessing'] = self.preprocessing.to_dict()
        return data


def artifact_paths(path: str | os.PathLike) -> tuple[Path, Path]:
    """``models/panda_default`` (or either file of the pair) -> (weights, sidecar) paths."""
    path = Path(path)
    if path.suffix in (WEIGHTS_SUFFIX, SIDECAR_SUFFIX):
        path = path.with_suffix('')
    return path.with_suffix(WEIGHTS_SUFFIX), path.with_suffix(SIDECAR_SUFFIX)


def save_artifact(path: str | os.PathLike, state_dict: dict, sidecar: Sidecar) -> Path:
    """Write ``<path>.safetensors`` and ``<path>.yaml``, each atomically; returns the weights
    path."""
    from safetensors.torch import save_file
    weights_path, sidecar_path = artifact_paths(path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    atomic_write(weights_path, lambda tmp: save_file(tensors, tmp, metadata={
        'format': ARTIFACT_FORMAT, 'robot': str(sidecar.robot)}))

    def write_sidecar(tmp):
        with open(tmp, 'w') as stream:
            yaml.safe_dump(sidecar.to_dict(), stream, sort_keys=False)
    atomic_write(sidecar_path, write_sidecar)
    return weights_path


def load_sidecar(path: str | os.PathLike) -> Sidecar:
    """Read and check the sidecar of an artifact."""
    _, sidecar_path = artifact_paths(path)
    if not sidecar_path.is_file():
        raise ArtifactError(f'artifact sidecar not found: {sidecar_path}')
    try:
        data = yaml.safe_load(sidecar_path.read_text())
    except yaml.YAMLError as error:
        raise ArtifactError(f'{sidecar_path}: not valid YAML: {error}') from error
    if not isinstance(data, dict) or data.get('format') != ARTIFACT_FORMAT:
        raise ArtifactError(f"{sidecar_path}: not a robotag_ros artifact sidecar "
                            f"(expected format '{ARTIFACT_FORMAT}')")
    if 'preprocessing' not in data:
        data = {k: v for k, v in data.items() if k not in _LEGACY_PREPROCESSING_FIELDS}
    try:
        sidecar = Sidecar(**data)
    except TypeError as error:
        raise ArtifactError(f'{sidecar_path}: unexpected sidecar fields: {error}') from error
    except ValueError as error:
        raise ArtifactError(f'{sidecar_path}: preprocessing: {error}') from error
    _check_input_size(sidecar.input_size, sidecar_path)
    return sidecar


# Network input sides (pixels) a sidecar may give: below the backbone's stride of 32 a
# convolution has nothing to slide over; above, no image is ever upscaled to it.
INPUT_SIZE_RANGE_PX = (32, 4096)


def _check_input_size(input_size, sidecar_path: Path) -> None:
    low, high = INPUT_SIZE_RANGE_PX
    if not (isinstance(input_size, (list, tuple)) and len(input_size) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and low <= v <= high
                    for v in input_size)):
        raise ArtifactError(f'{sidecar_path}: input_size must be [height, width], each an '
                            f'integer from {low} to {high} pixels, got {input_size!r}')


def load_weights(path: str | os.PathLike) -> dict:
    """Read the weights of an artifact (safetensors: no code runs while loading)."""
    from safetensors.torch import load_file
    weights_path, _ = artifact_paths(path)
    if not weights_path.is_file():
        raise ArtifactError(f'artifact weights not found: {weights_path}')
    try:
        return load_file(str(weights_path))
    except Exception as error:  # noqa: BLE001 - safetensors raises several types
        raise ArtifactError(f'{weights_path} is truncated or corrupt: {error}') from error


def check_robot_matches(sidecar: Sidecar, robot: Any, where: str = 'artifact') -> None:
    """Refuse weights trained for another robot (or another joint/keypoint order)."""
    if list(sidecar.joint_names) != list(robot.joint_names):
        raise ArtifactError(f'{where} was trained for joints {sidecar.joint_names} '
                            f"(robot '{sidecar.robot}'), not {robot.joint_names} "
                            f"(robot '{robot.name}')")
    if list(sidecar.keypoint_names) != list(robot.keypoint_names):
        raise ArtifactError(f'{where} predicts keypoints {sidecar.keypoint_names}, robot '
                            f"'{robot.name}' has {robot.keypoint_names}")


def load_model(path: str | os.PathLike, robot: Optional[Any] = None, device: str = 'cpu'):
    """Build the TAG model an artifact describes and load its weights; returns (model, sidecar)."""
    from robotag_ros.model import build_model  # deferred: keeps artifact I/O light to import
    from robotag_ros.robot import load_robot
    sidecar = load_sidecar(path)
    robot = robot if robot is not None else load_robot(sidecar.robot)
    check_robot_matches(sidecar, robot, where=str(artifact_paths(path)[0]))
    # The artifact holds every weight: no pretrained backbone file is read (or needed) to load.
    model = build_model(robot, dict(sidecar.model_config, pretrained_2d=None, pretrained_3d=None))
    model.set_preprocessing(sidecar.preprocessing)   # fine-tuning normalises as it was trained
    state = load_weights(path)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:  # missing/unexpected keys or shape mismatches
        raise ArtifactError(f'{artifact_paths(path)[0]} does not match its model config: '
                            f'{str(error)[:500]}') from error
    return model.to(device).eval(), sidecar
