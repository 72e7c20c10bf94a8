"""Training configuration: dataclass defaults <- experiment YAML <- command-line overrides."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import yaml

from robotag_ros.config_merge import merge_into
from robotag_ros.model.efficientnet_backbone import MAX_TRAINED_STAGES


@dataclass
class DataConfig:
    """Where the images come from. Stage 1 reads labelled DREAM-format folders; stage 2 reads
    unlabelled images from rosbag2 files (by topic) or image folders."""

    train: list[str] = field(default_factory=list)       # DREAM-format folders (labelled)
    val: list[str] = field(default_factory=list)         # held-out DREAM-format folders
    bags: list[str] = field(default_factory=list)        # rosbag2 directories/files (stage 2)
    image_topic: str = '/camera/image_raw'
    camera_info_topic: Optional[str] = None              # default: the bag's CameraInfo next to it
    image_dirs: list[str] = field(default_factory=list)  # folders of images (stage 2)
    buffer_dirs: list[str] = field(default_factory=list)  # online frame buffers (stage 2)
    intrinsics: Optional[list[list[float]]] = None       # 3x3 K: image folders, bags without it
    image_size: list[int] = field(default_factory=lambda: [256, 256])   # network input (H, W)
    augment: bool = True
    num_workers: int = 2
    max_frames: int = 0                                  # 0 = all; caps each folder (quick runs)
    # Train on robot-centred crops (and some whole frames), as the estimator's second pass sees.
    robot_crop: bool = False
    # Folders of ``train`` seen by one fixed camera (a self-labelled static recording): their
    # frames do not train the view head, which would learn that every camera is on that side.
    single_camera: list[str] = field(default_factory=list)
    # Paste the robot (where a folder has masks) on a procedural background this often: a
    # self-labelled recording shows one room, which the network must not learn instead.
    background_replace_prob: float = 0.0
    # Shrink and enlarge back this fraction of samples by U(resolution_min_scale, 1): a
    # recording from one camera shows the robot at one resolution; other cameras see it coarser.
    resolution_jitter_prob: float = 0.0
    resolution_min_scale: float = 0.5
    # The CPU recipe: freeze the pretrained trunk and run it once per view, caching its outputs
    # (training/feature_cache.py). Needs an EfficientNet backbone and backbone_3d: shared.
    cache_trunk: bool = False
    cache_views_per_frame: int = 2
    cache_dir: str = 'data/trunk_cache'


@dataclass
class OptimConfig:
    """Optimiser and schedule; the paper decays the learning rate by 0.95 per epoch."""

    lr: float = 1e-3
    weight_decay: float = 1e-4
    epochs: int = 20
    lr_decay_per_epoch: float = 0.95
    batch_size: int = 16              # per process; the global batch is this x world size
    grad_clip_norm: float = 5.0
    amp: bool = True                  # bf16 autocast on CUDA; ignored on CPU
    warmup_steps: int = 200


@dataclass
class TrainConfig:
    """One training run. ``stage`` 1: supervised + alignment; 2: alignment only (no labels)."""

    stage: int = 1
    robot: str = 'panda'
    model: str = 'config/model/default.yaml'            # model config YAML (backbones, heads)
    model_overrides: dict = field(default_factory=dict)  # e.g. {loops_off: [point_cloud]}
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run_dir: str = 'runs/default'
    init_from: Optional[str] = None       # artifact or checkpoint to start from (stage 2)
    artifact_out: Optional[str] = None    # where the inference artifact goes (default run_dir)
    seed: int = 0
    device: str = 'auto'                  # auto | cpu | cuda
    log_every_steps: int = 20
    overlay_every_steps: int = 500
    eval_every_epochs: int = 1
    max_steps_per_epoch: int = 0          # 0 = full epoch (tests and smoke runs cap it)
    time_budget_minutes: float = 0.0      # >0: stop after the epoch that crosses this budget
    max_eval_frames: int = 0              # cap the per-epoch evaluation (0 = every val frame)
    keep_epoch_checkpoints: bool = False  # also keep checkpoint_epochNNN.pt (learning curves)
    # Keep a pretrained trunk (EfficientNet) fixed, weights and BatchNorm statistics: what the
    # cached recipe does, and stage 2's default on a CPU (no effect on other backbones).
    freeze_trunk: bool = False
    # With a frozen (or cached) EfficientNet trunk, its last stages still learn (1: stride 32;
    # 2: strides 16 and 32; 3: from stride 8): the ImageNet features tuned to which robot part
    # is which; on cached outputs they rerun on the cached tap below them (on a CPU ~1/4 more
    # per step for one stage).
    trained_trunk_stages: int = 0
    # Keep the EfficientNet trunk's BatchNorm statistics fixed while all its weights learn
    # (freeze_trunk implies it): a whole-trunk phase from a trained model without the jump
    # from running to batch statistics.
    fix_trunk_batchnorm: bool = False
    # Stage 2: the heatmaps' cross-entropy toward the robot prior fitted to the network's own
    # keypoints (the inference-time loop as a target), on frames whose fit leaves a mean
    # residual under fit_keypoints_max_residual_px (network pixels); 0 = alignment losses only.
    fit_keypoints_weight: float = 0.0
    fit_keypoints_max_residual_px: float = 4.0
    # 'all' trains every head on the TAG loss; 'keypoints' only the 2D keypoint heatmaps (neck +
    # heatmap head, cross-entropy): the fit reads nothing else, and a step costs a third.
    heads: str = 'all'


TRAINED_HEADS = ('all', 'keypoints')


def parse_override(text: str) -> dict:
    """``optim.lr=1e-4`` -> {'optim': {'lr': 0.0001}}; values are parsed as YAML."""
    if '=' not in text:
        raise ValueError(f"override '{text}' is not of the form key.sub=value")
    dotted, raw = text.split('=', 1)
    value = yaml.safe_load(raw) if raw != '' else ''
    for key in reversed(dotted.split('.')):
        value = {key: value}
    return value


def load_config(path: Optional[str] = None, overrides: Optional[list[str]] = None) -> TrainConfig:
    """Defaults, then the experiment YAML, then ``key.sub=value`` overrides, in that order."""
    config = TrainConfig()
    if path:
        with open(path) as stream:
            try:
                data = yaml.safe_load(stream) or {}
            except yaml.YAMLError as error:
                raise ValueError(f'{path}: not valid YAML ({error})') from None
        if not isinstance(data, dict):
            raise ValueError(f'{path}: expected a mapping at the top level')
        config = merge_into(config, data, str(path))
    for text in overrides or []:
        config = merge_into(config, parse_override(text), f'override {text}')
    if config.stage not in (1, 2):
        raise ValueError(f'stage must be 1 or 2, not {config.stage}')
    if config.heads not in TRAINED_HEADS:
        raise ValueError(f'heads must be one of {TRAINED_HEADS}, not {config.heads!r}')
    if config.heads == 'keypoints' and config.stage != 1:
        raise ValueError("heads=keypoints needs labels (stage 1)")
    if not 0 <= config.trained_trunk_stages <= MAX_TRAINED_STAGES:
        raise ValueError(f'trained_trunk_stages must be 0..{MAX_TRAINED_STAGES}, not '
                         f'{config.trained_trunk_stages}')
    if config.trained_trunk_stages and not (config.freeze_trunk or config.data.cache_trunk):
        raise ValueError('trained_trunk_stages needs a frozen trunk (freeze_trunk=true or '
                         'data.cache_trunk=true); without one the whole trunk trains anyway')
    return config


def config_to_dict(config: TrainConfig) -> dict:
    return dataclasses.asdict(config)


def config_hash(config_dict: dict) -> str:
    """A short stable hash of a config (written into checkpoints and artifacts)."""
    return hashlib.sha256(json.dumps(config_dict, sort_keys=True).encode()).hexdigest()[:12]


def write_run_metadata(config: TrainConfig, run_dir: Path, data_fingerprint: str) -> None:
    """Write the merged config, the git revision and the data fingerprint into the run dir."""
    import subprocess
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        revision = subprocess.run(['git', 'rev-parse', 'HEAD'], capture_output=True, text=True,
                                  cwd=Path(__file__).resolve().parent, timeout=10).stdout.strip()
        dirty = subprocess.run(['git', 'status', '--porcelain'], capture_output=True, text=True,
                               cwd=Path(__file__).resolve().parent, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        revision, dirty = 'unknown', ''
    meta = {'config': config_to_dict(config), 'config_hash': config_hash(config_to_dict(config)),
            'git_revision': revision or 'unknown', 'git_dirty': bool(dirty),
            'data_fingerprint': data_fingerprint}
    with open(run_dir / 'config.yaml', 'w') as stream:
        yaml.safe_dump(meta, stream, sort_keys=False)
