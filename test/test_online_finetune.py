"""Online fine-tuning pieces without ROS: buffer bounds, atomic pointers, the accept rule, the
swap under concurrent estimate() calls, the candidate watcher, and one full online round."""
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from robotag_ros.finetune import (BufferDataset, CandidateWatcher, FrameBuffer, FrameRecorder,
                                  ModelStore, SwappableEstimator, accept_candidate,
                                  holdout_score)
from robotag_ros.model.artifact import artifact_paths

K = np.array([[80.0, 0.0, 32.0], [0.0, 80.0, 24.0], [0.0, 0.0, 1.0]])
SAMPLE = Path(__file__).parent / 'data' / 'dream_panda_sample'   # three rendered 128x96 frames
K_SAMPLE = np.array([[79.9316, 0.0, 63.9792], [0.0, 79.8992, 48.812], [0.0, 0.0, 1.0]])


def _image(value: int) -> np.ndarray:
    return np.full((48, 64, 3), value, dtype=np.uint8)


def test_buffer_keeps_the_newest_frames_only(tmp_path):
    buffer = FrameBuffer(tmp_path / 'buffer', capacity=4, holdout_every=3)
    for value in range(10):
        buffer.add(_image(10 * value), K, stamp_ns=value)
    frames = buffer.frames()
    assert [f.seq for f in frames] == [6, 7, 8, 9]
    assert len(list((tmp_path / 'buffer').iterdir())) == 8   # a JPEG and a JSON each
    image, K_loaded = frames[-1].load()
    assert image.shape == (48, 64, 3) and abs(int(image.mean()) - 90) <= 2
    np.testing.assert_allclose(K_loaded, K)
    training, held_out = buffer.split()
    assert [f.seq for f in held_out] == [6, 9] and [f.seq for f in training] == [7, 8]
    # A new writer on the same folder goes on numbering after the newest frame.
    assert FrameBuffer(tmp_path / 'buffer', capacity=4).add(_image(0), K).seq == 10


def test_incomplete_frames_are_invisible_and_unreadable_ones_skipped(tmp_path):
    buffer = FrameBuffer(tmp_path, capacity=10)
    buffer.add(_image(50), K)
    (tmp_path / 'frame_000000000007.jpg').write_bytes(b'half written, no JSON yet')
    assert [f.seq for f in buffer.frames()] == [0]
    broken = buffer.add(_image(60), K)
    broken.image_path.write_bytes(b'not a jpeg')
    dataset = BufferDataset(buffer.frames(), (32, 32), num_joints=7, num_keypoints=7)
    sample = dataset[1]     # the broken frame: falls back to the next readable one
    assert sample['image'].shape == (3, 32, 32) and not bool(sample['has_joint_angles'])
    assert dataset.unreadable == 1


def test_recorder_samples_every_nth_frame_asynchronously(tmp_path):
    recorder = FrameRecorder(FrameBuffer(tmp_path, capacity=100), every_n=3, asynchronous=True)
    taken = [recorder.maybe_record(_image(i), K, i) for i in range(10)]
    recorder.close()
    assert taken == [i % 3 == 0 for i in range(10)]
    assert len(recorder.buffer.frames()) == recorder.recorded == 4


def _store_with_candidate(folder: Path, tag: str) -> tuple[ModelStore, Path, Path]:
    """A store serving an 'initial' artifact, with the one tagged ``tag`` as its candidate."""
    store = ModelStore(folder)
    initial, candidate = _fake_artifact(store, 'initial'), _fake_artifact(store, tag)
    store.set_current(initial)
    store.set_candidate(candidate)
    return store, initial, candidate


def _fake_artifact(store: ModelStore, tag: str) -> Path:
    prefix = store.new_artifact_path(tag)
    for path in artifact_paths(prefix):
        path.write_text(tag)
    return prefix


def test_pointers_are_atomic_and_previous_artifacts_kept(tmp_path, monkeypatch):
    store = ModelStore(tmp_path)
    first, second = _fake_artifact(store, 'first'), _fake_artifact(store, 'second')
    store.set_current(first)
    assert store.current() == first
    with pytest.raises(ValueError):
        store.set_current(tmp_path.parent / 'elsewhere')
    with pytest.raises(FileNotFoundError):
        store.set_current(tmp_path / 'missing')
    assert store.current() == first

    def crash(*_):
        raise OSError('disk full')
    monkeypatch.setattr('os.replace', crash)
    with pytest.raises(OSError):
        store.set_current(second)
    monkeypatch.undo()
    assert store.current() == first           # the old pointer survived the failed write
    assert not [p for p in tmp_path.iterdir() if p.name.endswith('.tmp')]
    store.set_current(second)
    assert store.current() == second and store.artifacts() == [first, second]


@pytest.mark.parametrize('candidate,current,margin,expected', [
    (0.8, 0.7, 0.0, True), (0.7, 0.7, 0.0, False), (0.6, 0.7, 0.0, False),
    (0.75, 0.7, 0.1, False), (float('nan'), 0.7, 0.0, False), (0.5, float('nan'), 0.0, True)])
def test_accept_rule(candidate, current, margin, expected):
    assert accept_candidate(candidate, current, margin) is expected


class ScoredEstimator:
    """Answers every frame with a fixed consistency (and fit residual, if given); slow enough to
    overlap a swap."""

    def __init__(self, score: float, delay_s: float = 0.0, fit_residual_px=None):
        self.score, self.delay_s, self.fit_residual_px = score, delay_s, fit_residual_px
        self.robot_name = 'panda'

    def estimate(self, image_rgb, K, **_):
        time.sleep(self.delay_s)
        terms = {} if self.fit_residual_px is None else {'fit_residual_px': self.fit_residual_px}
        return type('E', (), {'consistency': self.score, 'consistency_terms': terms})()


def test_holdout_score_needs_only_a_pose_estimators_estimate():
    """A PoseEstimator has estimate(); the project's Estimator also batches, without points."""
    frames = [(_image(i), K) for i in range(3)]
    assert holdout_score(ScoredEstimator(0.4), frames) == pytest.approx(0.4)
    assert holdout_score(SwappableEstimator(ScoredEstimator(0.4)), frames) == pytest.approx(0.4)

    class Batching(ScoredEstimator):
        def __init__(self):
            super().__init__(0.7)
            self.batches = []

        def estimate_batch(self, images, intrinsics, **options):
            self.batches.append((len(images), options))
            return [self.estimate(i, k) for i, k in zip(images, intrinsics)]

    batching = Batching()
    assert holdout_score(SwappableEstimator(batching), frames, batch_size=2) == \
        pytest.approx(0.7)
    assert batching.batches == [(2, {'with_points': False}), (1, {'with_points': False})]


def test_swap_under_concurrent_estimate_calls():
    swappable = SwappableEstimator(ScoredEstimator(0.1, delay_s=0.002))
    seen, errors, stop = [], [], threading.Event()

    def infer():
        while not stop.is_set():
            try:
                seen.append(swappable.estimate(_image(0), K).consistency)
            except Exception as error:   # noqa: BLE001 - recorded for the assertion
                errors.append(error)

    workers = [threading.Thread(target=infer) for _ in range(3)]
    for worker in workers:
        worker.start()
    time.sleep(0.05)
    previous = swappable.swap(ScoredEstimator(0.9, delay_s=0.002))
    time.sleep(0.05)
    stop.set()
    for worker in workers:
        worker.join()
    assert not errors and previous.score == 0.1 and swappable.generation == 1
    assert 0.1 in seen and seen[-1] == 0.9
    first_new = seen.index(0.9)
    # After the first call on the new model only a call already in flight may end on the old.
    assert seen[first_new:].count(0.1) <= len(workers)
    assert swappable.robot_name == 'panda'


@pytest.mark.parametrize('candidate_score,accepted', [(0.8, True), (0.3, False)])
def test_watcher_swaps_only_a_better_candidate(tmp_path, candidate_score, accepted):
    store, initial, candidate = _store_with_candidate(tmp_path, 'finetuned')
    swappable = SwappableEstimator(ScoredEstimator(0.5))

    def loader(path):   # the served model scores 0.5, the candidate its own score
        return ScoredEstimator(candidate_score if path == candidate else 0.5)
    watcher = CandidateWatcher(swappable, store, loader, lambda: [(_image(0), K)] * 4,
                               log=lambda _: None)
    decision = watcher.check_once()
    assert decision['accepted'] is accepted
    assert store.current() == (candidate if accepted else initial)
    assert swappable.current.score == (candidate_score if accepted else 0.5)
    assert store.candidate() is None and initial in store.artifacts()
    assert store.decisions()[-1]['candidate_score'] == candidate_score
    assert watcher.check_once() is None       # nothing pending any more


def test_with_a_fit_the_gate_follows_the_fit_residual_not_the_consistency(tmp_path):
    # What stage 2's alignment losses do on the shifted domain: the branches agree more
    # (consistency up) while the keypoints move away from any pose of the robot (residual up).
    store, initial, candidate = _store_with_candidate(tmp_path, 'aligned')
    current = ScoredEstimator(0.009, fit_residual_px=8.1)
    swappable = SwappableEstimator(current)

    def loader(path):
        return ScoredEstimator(0.029, fit_residual_px=13.0) if path == candidate else current
    decision = CandidateWatcher(swappable, store, loader, lambda: [(_image(0), K)] * 3,
                                log=lambda _: None).check_once()
    assert decision['accepted'] is False
    assert decision['candidate_score'] == pytest.approx(-13.0)
    assert decision['current_score'] == pytest.approx(-8.1)
    assert store.current() == initial and swappable.current is current


@pytest.mark.parametrize('margin_px,accepted', [(0.0, True), (2.0, False)])
def test_the_gate_margin_is_the_serving_models_fit_setting(tmp_path, margin_px, accepted):
    # A candidate 1 px better: served unless the current model's sidecar asks for more.
    from robotag_ros.inference.fit_settings import FitSettings
    store, initial, candidate = _store_with_candidate(tmp_path, 'better')
    current = ScoredEstimator(0.1, fit_residual_px=8.0)
    current.fit_settings = FitSettings(swap_min_improvement=margin_px)

    def loader(path):
        return ScoredEstimator(0.1, fit_residual_px=7.0) if path == candidate else current
    decision = CandidateWatcher(SwappableEstimator(current), store, loader,
                                lambda: [(_image(0), K)] * 2, log=lambda _: None).check_once()
    assert decision['accepted'] is accepted


def test_broken_candidate_is_rejected(tmp_path):
    store, initial, candidate = _store_with_candidate(tmp_path, 'broken')
    swappable = SwappableEstimator(ScoredEstimator(0.5))

    def loader(path):
        if path == candidate:
            raise RuntimeError('truncated weights')
        return ScoredEstimator(0.5)
    decision = CandidateWatcher(swappable, store, loader, lambda: [(_image(0), K)],
                                log=lambda _: None).check_once()
    assert decision['accepted'] is False and 'truncated' in decision['reason']
    assert store.current() == initial and swappable.current.score == 0.5


def test_online_round_writes_a_candidate_the_node_can_judge(tmp_path, panda):
    """Buffer of rendered frames -> one fine-tuning round -> candidate -> real Estimators."""
    from robotag_ros.finetune.hooks import serving_model_path
    from robotag_ros.estimator_factory import load_estimator
    from robotag_ros.model.artifact import Sidecar, save_artifact
    from robotag_ros.model import ModelConfig, build_model
    from robotag_ros.training.online import online_round

    torch.manual_seed(0)
    model = build_model(panda, ModelConfig(width_2d=8, width_3d=8, head_width=16,
                                           num_unproj_points=64))
    start = tmp_path / 'start'
    save_artifact(start, model.state_dict(), Sidecar(
        robot='panda', joint_names=list(panda.joint_names),
        keypoint_names=list(panda.keypoint_names), input_size=[64, 64],
        model_config=model.config.to_dict()))
    buffer = FrameBuffer(tmp_path / 'buffer', capacity=50)
    for path in sorted(SAMPLE.glob('*.rgb.jpg')) * 3:
        buffer.add(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB), K_SAMPLE)
    models = tmp_path / 'models'
    serving = serving_model_path(str(models), str(start))
    assert Path(serving).parent == models

    candidate = online_round(str(tmp_path / 'buffer'), str(models), min_train_frames=4,
                             overrides=['optim.epochs=1', 'optim.batch_size=3', 'device=cpu'])
    store = ModelStore(models)
    assert store.candidate() == candidate and store.current() == Path(serving)
    assert (models / 'runs' / candidate.name / 'checkpoint_last.pt').is_file()
    swappable = SwappableEstimator(load_estimator(serving))
    decision = CandidateWatcher(swappable, store, load_estimator,
                                lambda: [f.load() for f in buffer.split()[1]],
                                log=lambda _: None).check_once()
    assert decision['holdout_frames'] == len(buffer.split()[1]) > 0
    assert np.isfinite(decision['candidate_score']) and np.isfinite(decision['current_score'])
    assert store.current() == (candidate if decision['accepted'] else Path(serving))
