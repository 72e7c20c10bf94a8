"""A domain-randomised synthetic DREAM-format data set of one robot (what `robotag-synth` makes,
robotag_ros/data/cli.py).

Frame i of a set is made from the RNG seeded by (seed, i), so shards (--shard i/n takes frames
i, i+n, i+2n, ...) and workers never change a frame: the parts form one set, and the same seed
and config give byte-identical JSON. A frame is finished when its JSON exists (written last,
atomically); a rerun skips finished frames, so an interrupted run resumes.

One K per set, as every DREAM reader assumes: ``camera.intrinsics_px`` when the config gives it,
else drawn once from the config's randomised intrinsics by the seed (sets with other seeds get
other intrinsics; make several sets for a variety of lenses).
"""
from __future__ import annotations

import multiprocessing
import shutil
from pathlib import Path

import numpy as np
import yaml
from tqdm import tqdm

from robotag_ros.atomic_io import atomic_write_bytes
from robotag_ros.data.dream.format import frame_stem
from robotag_ros.data.dream.writer import write_frame
from robotag_ros.data.dream.writer import write_set_files
from robotag_ros.data.synthetic.camera_sampling import sample_intrinsics
from robotag_ros.data.synthetic.dr_config import DRConfig, dr_config_to_dict
from robotag_ros.robot import load_robot

SYNTH_CONFIG_FILE = '_robotag_synth.yaml'  # the merged DR config, seed and size of the set
# Layout of the files robotag-synth writes: 2 = one K per folder (older sets: a K per frame).
SYNTH_LAYOUT = 2
_SET_RNG_KEY = 0x5E7  # spawn key of the set-wide RNG: its draws never coincide with a frame's

_worker = {}


def shard_indices(num_frames: int, shard: tuple[int, int]) -> list[int]:
    """Frame indices of one shard: i, i+n, i+2n, ... (the shards partition range(num_frames))."""
    index, count = shard
    return list(range(index, num_frames, count))


def set_intrinsics(config: DRConfig, height: int, width: int, seed: int) -> np.ndarray:
    """The one K (3, 3) pixels of a set: ``camera.intrinsics_px`` [fx, fy, cx, cy] if given,
    else one draw of the randomised intrinsics from an RNG of the seed alone."""
    fixed = config.camera.intrinsics_px
    if fixed is not None:
        values = np.asarray(fixed, dtype=np.float64).ravel() if isinstance(
            fixed, (list, tuple)) else np.array([np.nan])
        if values.shape != (4,) or not np.isfinite(values).all() or min(values[:2]) <= 0:
            raise ValueError(f'camera.intrinsics_px must be [fx, fy, cx, cy] pixels with '
                             f'positive focal lengths, got {fixed!r}')
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(_SET_RNG_KEY,)))
    return sample_intrinsics(rng, height, width, config.camera)


def _init_worker(robot_name: str, config: DRConfig, height: int, width: int, out_dir: str,
                 seed: int) -> None:
    import torch
    torch.set_num_threads(1)
    from robotag_ros.data.synthetic.frame_generator import SyntheticFrameGenerator
    robot = load_robot(robot_name)
    K = set_intrinsics(config, height, width, seed)
    _worker.update(robot=robot, config=config, out_dir=out_dir, seed=seed,
                   generator=SyntheticFrameGenerator(robot, config, height, width, K=K))


def _make_frame(frame_index: int) -> int:
    from robotag_ros.data.synthetic.frame_generator import encode_jpeg
    config = _worker['config']
    frame = _worker['generator'].generate(_worker['seed'], frame_index)
    jpeg = encode_jpeg(frame.rgb, config.image.jpeg_quality)
    write_frame(_worker['out_dir'], frame_index, _worker['robot'], frame, jpeg,
                save_mask=config.save_mask, save_depth=config.save_depth)
    return frame_index


def write_set_header(out_dir: Path, robot, config: DRConfig, seed: int, height: int,
                     width: int) -> None:
    """Settings files of the set, and the merged DR config (refuses a different config)."""
    K = set_intrinsics(config, height, width, seed)
    record = {'robot': robot.name, 'seed': int(seed), 'height': int(height),
              'width': int(width), 'layout': SYNTH_LAYOUT,
              'intrinsics_px': [round(float(v), 6) for v in (K[0, 0], K[1, 1], K[0, 2], K[1, 2])],
              'dr_config': dr_config_to_dict(config)}
    record_path = out_dir / SYNTH_CONFIG_FILE
    if record_path.exists():
        existing = yaml.safe_load(record_path.read_text())
        if existing != record:
            older = '' if (existing or {}).get('layout') == SYNTH_LAYOUT else (
                ' (or by an older robotag-synth, with a K per frame)')
            raise SystemExit(f'{record_path}: this folder was made with another robot, seed, size '
                             f'or config{older}; use a new --out or the same settings to resume')
    write_set_files(out_dir, robot, K, height, width)
    atomic_write_bytes(record_path, yaml.safe_dump(record, sort_keys=False).encode())


def generate_set(robot_name: str, out_dir: str | Path, num_frames: int, seed: int,
                 config: DRConfig, height: int, width: int, workers: int = 1,
                 shard: tuple[int, int] = (0, 1), progress: bool = True) -> int:
    """Make the missing frames of this shard; returns how many frames were written. A folder
    this call creates is removed again when the call fails (a render error, a bad robot): no
    half-made set is left behind. An existing folder keeps its finished frames (resumable)."""
    out_dir = Path(out_dir)
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        return _generate_missing(robot_name, out_dir, num_frames, seed, config, height, width,
                                 workers, shard, progress)
    except Exception:
        if created:
            shutil.rmtree(out_dir, ignore_errors=True)
        raise


def _generate_missing(robot_name: str, out_dir: Path, num_frames: int, seed: int,
                      config: DRConfig, height: int, width: int, workers: int,
                      shard: tuple[int, int], progress: bool) -> int:
    write_set_header(out_dir, load_robot(robot_name), config, seed, height, width)
    todo = [i for i in shard_indices(num_frames, shard)
            if not (out_dir / f'{frame_stem(i)}.json').exists()]
    args = (robot_name, config, height, width, str(out_dir), seed)
    bar = tqdm(total=len(todo), desc=f'robotag-synth {out_dir.name}', unit='frame',
               disable=not progress)
    if workers <= 1:
        _init_worker(*args)
        try:
            for index in todo:
                _make_frame(index)
                bar.update()
        finally:
            _worker['generator'].close()
    else:
        # spawn: each worker builds its own robot and GL context, nothing GL crosses a fork.
        context = multiprocessing.get_context('spawn')
        with context.Pool(workers, initializer=_init_worker, initargs=args) as pool:
            for _ in pool.imap_unordered(_make_frame, todo, chunksize=4):
                bar.update()
    bar.close()
    return len(todo)
