"""Run the estimator node on a sample bag in real processes and score what it published.

Used by the demo (robotag_ros.harness.demo) and the proof-of-life test. :class:`NodeSession` starts
the node (the ``estimator`` console script, else ``python -m``) and an output listener as child
processes on a private, machine-local DDS domain, and plays bags into it with the sample player;
:func:`score_frames` matches the node's outputs to the bag's ground truth by stamp. This module
does not import rclpy itself: every ROS participant is a child process.

Errors (robotag_ros.metrics' definitions, so they compare with robotag-eval's): joint angles in
degrees (|estimate - truth| per joint); camera translation error in millimetres between the
T_cam_base translations (the base origin seen from the camera) and geodesic rotation error in
degrees. Also the camera position error: the distance between the estimated and true camera
positions in the base frame (T_base_cam, what ~/camera_pose publishes), which rotation errors
inflate by the camera's distance.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from robotag_ros.metrics.pose_metrics import camera_pose_errors, joint_errors_deg
from robotag_ros.harness.local_dds import local_ros_env
from robotag_ros.stamps import stamp_key

PACKAGE_ROOT = Path(__file__).resolve().parents[2]   # the folder holding robotag_ros/
DEFAULT_PARAMS = PACKAGE_ROOT / 'config' / 'estimator.yaml'
CAMERA_NAMESPACE = '/camera/color'


def node_command(params_file: Path | None = DEFAULT_PARAMS, parameters: dict | None = None,
                 remappings: dict | None = None, executable: str | None = None) -> list[str]:
    """The estimator's command line: the console script beside this Python, else ``-m``."""
    script = executable or shutil.which('estimator', path=str(Path(sys.executable).parent))
    command = [script] if script else [sys.executable, '-m', 'robotag_ros.ros.estimator_node']
    command.append('--ros-args')
    if params_file is not None:
        command += ['--params-file', str(params_file)]
    for name, value in (parameters or {}).items():
        # Values are YAML: JSON-quote strings so '' and paths stay strings.
        command += ['-p', f'{name}:={json.dumps(value)}']
    for source, target in (remappings or {}).items():
        command += ['-r', f'{source}:={target}']
    return command


class NodeSession:
    """The estimator node and an output listener as child processes on one local DDS domain.

    Use as a context manager; :meth:`play` plays a sample bag into the node, :meth:`run` runs
    another ROS process (a frame driver) on the domain, :meth:`stop` ends the listener and the
    node and returns what the listener recorded. ``listen=False`` starts the node alone (the
    caller drives it and sees it come up through robotag_ros.ros.frame_driver);
    ``all_outputs`` has the listener subscribe to every optional output too. Logs and result
    files go to ``work_dir``.
    """

    def __init__(self, work_dir: str | os.PathLike, domain_id: int,
                 parameters: dict | None = None, params_file: Path | None = DEFAULT_PARAMS,
                 camera_namespace: str = CAMERA_NAMESPACE, overlay_dir: Path | None = None,
                 executable: str | None = None, ready_timeout_s: float = 180.0,
                 extra_env: dict | None = None, listen: bool = True,
                 all_outputs: bool = False):
        self.work_dir = Path(work_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.env = local_ros_env(domain_id, pythonpath=str(PACKAGE_ROOT))
        self.env.update(extra_env or {})
        self.camera_namespace = camera_namespace.rstrip('/')
        self.command = node_command(params_file, parameters,
                                    {'image': f'{self.camera_namespace}/image_raw',
                                     'camera_info': f'{self.camera_namespace}/camera_info'},
                                    executable)
        self.overlay_dir = overlay_dir
        self.ready_timeout_s = ready_timeout_s
        self.listen, self.all_outputs = listen, all_outputs
        self.node = self.listener = None
        self.node_alive_after_play: bool | None = None
        self._stop_file = self.work_dir / 'listener.stop'
        self._ready_file = self.work_dir / 'listener.ready'
        self._result_file = self.work_dir / 'listened.json'
        self._node_log_path = self.work_dir / 'node.log'

    def __enter__(self) -> 'NodeSession':
        for path in (self._stop_file, self._ready_file, self._result_file):
            path.unlink(missing_ok=True)
        self._node_log = open(self._node_log_path, 'w')
        self.node = subprocess.Popen(self.command, env=self.env, cwd=PACKAGE_ROOT,
                                     stdout=self._node_log, stderr=subprocess.STDOUT)
        if not self.listen:
            return self
        listener = [sys.executable, '-m', 'robotag_ros.ros.output_listener',
                    str(self._result_file), '--stop-file', str(self._stop_file),
                    '--ready-file', str(self._ready_file)]
        if self.overlay_dir is not None:
            listener += ['--overlay-dir', str(self.overlay_dir)]
        if self.all_outputs:
            listener.append('--all-outputs')
        self.listener = subprocess.Popen(listener, env=self.env, cwd=PACKAGE_ROOT)
        try:
            deadline = time.monotonic() + self.ready_timeout_s
            while not self._ready_file.exists():
                if self.node.poll() is not None:
                    raise RuntimeError(f'the estimator node exited ({self.node.returncode}):\n'
                                       f'{self.node_log()}')
                if self.listener.poll() is not None:
                    raise RuntimeError('the output listener exited early')
                if time.monotonic() > deadline:
                    raise TimeoutError(f'the node did not come up within {self.ready_timeout_s}'
                                       f' s:\n{self.node_log()}')
                time.sleep(0.1)
        except BaseException:
            self._terminate()
            raise
        return self

    def node_log(self) -> str:
        """The node's stdout and stderr so far."""
        if not self._node_log.closed:
            self._node_log.flush()
        return self._node_log_path.read_text()

    def run(self, command: list[str], timeout_s: float = 300.0) -> subprocess.CompletedProcess:
        """Run another ROS process (e.g. a test driver) on this session's domain."""
        return subprocess.run(command, env=self.env, cwd=PACKAGE_ROOT, timeout=timeout_s)

    def play(self, bag: str | os.PathLike, stride: int = 1, max_frames: int = 0,
             pace: str = 'answer', rate_hz: float = 15.0, answer_timeout_s: float = 60.0,
             timeout_s: float = 600.0) -> list[dict]:
        """Play a sample bag into the node; one record per frame (stamp, diagnostics answer)."""
        result = self.work_dir / f'played_{Path(bag).name}.json'
        result.unlink(missing_ok=True)
        completed = self.run(
            [sys.executable, '-m', 'robotag_ros.ros.sample_player', str(bag),
             '--image-topic', f'{self.camera_namespace}/image_raw',
             '--camera-info-topic', f'{self.camera_namespace}/camera_info',
             '--stride', str(stride), '--max-frames', str(max_frames), '--pace', pace,
             '--rate-hz', str(rate_hz), '--answer-timeout-s', str(answer_timeout_s),
             '--result', str(result)], timeout_s=timeout_s)
        self.node_alive_after_play = self.node.poll() is None
        if not result.exists():
            raise RuntimeError(f'the sample player failed ({completed.returncode}):\n'
                               f'{self.node_log()}')
        return json.loads(result.read_text())['frames']

    def stop(self) -> dict:
        """Stop the listener (it writes its record) and the node; return the record ({}
        without a listener)."""
        if self.listener is None:
            self._terminate()
            return {}
        self._stop_file.write_text('')
        try:
            self.listener.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        self._terminate()
        if not self._result_file.exists():
            raise RuntimeError('the output listener wrote no result')
        return json.loads(self._result_file.read_text())

    def _terminate(self) -> None:
        for process in (self.listener, self.node):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGINT)   # rclpy shuts down cleanly on SIGINT
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        if getattr(self, '_node_log', None) is not None and not self._node_log.closed:
            self._node_log.close()

    def __exit__(self, *exc_info) -> None:
        self._terminate()


@dataclass
class FrameScore:
    """One played frame: ground truth, what the node published for its stamp, and the errors.

    Angles in radians, except the ``*_deg`` errors; T_* 4x4 in metres; latency in milliseconds.
    Estimates are None when the node published nothing for the frame.
    """

    index: int
    stamp: str
    joint_names: list[str]
    joint_angles_gt_rad: np.ndarray
    T_base_cam_gt: np.ndarray
    joint_angles_rad: np.ndarray | None = None
    T_base_cam: np.ndarray | None = None
    joint_errors_deg: np.ndarray | None = None
    camera_translation_error_mm: float | None = None
    camera_position_error_mm: float | None = None
    camera_rotation_error_deg: float | None = None
    consistency: float | None = None
    latency_receive_to_publish_ms: float | None = None
    inference_ms: float | None = None
    diagnostics_message: str = ''
    tf_frames: tuple[str, str] | None = None       # (parent, child) of the /tf transform
    overlay_file: str | None = None
    extras: dict = field(default_factory=dict)

    @property
    def published(self) -> bool:
        """True when both joint_states and the camera transform came back for this frame."""
        return self.joint_angles_rad is not None and self.T_base_cam is not None


def transform_from_tf(entry: dict) -> np.ndarray:
    """4x4 T_parent_child of one recorded /tf transform."""
    T = np.eye(4)
    T[:3, :3] = Rotation.from_quat(entry['rotation_xyzw']).as_matrix()
    T[:3, 3] = entry['translation']
    return T


def score_frames(sample_frames, played: list[dict], listened: dict,
                 tf_parent: str = 'camera') -> list[FrameScore]:
    """Match every played frame with the node's outputs of the same stamp; compute errors.

    sample_frames: the bag's SampleFrames; played: the player's records; listened: the
    listener's record. The camera pose comes from /tf (``tf_parent`` as the node's parameter)
    and falls back to ~/camera_pose when /tf was not recorded.
    """
    truth = {stamp_key(f.stamp_ns): f for f in sample_frames}
    joints = {m['stamp']: m for m in listened.get('joint_states', [])}
    transforms = {m['stamp']: m for m in listened.get('tf', [])}
    poses = {m['stamp']: m for m in listened.get('camera_pose', [])}
    overlays = {m['stamp']: m.get('file') for m in listened.get('debug_image', [])}
    scores = []
    for record in played:
        key = record['stamp']
        frame = truth[key]
        score = FrameScore(index=record['index'], stamp=key, joint_names=frame.joint_names,
                           joint_angles_gt_rad=frame.joint_angles_rad,
                           T_base_cam_gt=np.linalg.inv(frame.T_cam_base),
                           overlay_file=overlays.get(key))
        answer = record.get('answer') or {}
        values = answer.get('values', {})
        score.diagnostics_message = answer.get('message', 'no answer')
        for name in ('consistency', 'latency_receive_to_publish_ms', 'inference_ms'):
            if name in values:
                setattr(score, name, float(values[name]))
        if key in joints:
            by_name = dict(zip(joints[key]['name'], joints[key]['position']))
            if all(name in by_name for name in frame.joint_names):
                score.joint_angles_rad = np.array([by_name[n] for n in frame.joint_names])
                score.joint_errors_deg = joint_errors_deg(score.joint_angles_rad[None],
                                                          frame.joint_angles_rad[None])[0]
            score.extras['joint_names_published'] = joints[key]['name']
        if key in transforms:
            entry = transforms[key]
            score.tf_frames = (entry['parent'], entry['child'])
            T = transform_from_tf(entry)
            score.T_base_cam = np.linalg.inv(T) if tf_parent == 'camera' else T
        elif key in poses:
            pose = poses[key]
            score.T_base_cam = transform_from_tf({'translation': pose['position'],
                                                  'rotation_xyzw': pose['rotation_xyzw']})
        if score.T_base_cam is not None:
            translation_mm, rotation_deg = camera_pose_errors(
                np.linalg.inv(score.T_base_cam)[None], frame.T_cam_base[None])
            score.camera_translation_error_mm = float(translation_mm[0])
            score.camera_rotation_error_deg = float(rotation_deg[0])
            score.camera_position_error_mm = 1000.0 * float(np.linalg.norm(
                score.T_base_cam[:3, 3] - score.T_base_cam_gt[:3, 3]))
        scores.append(score)
    return scores


def summarize(scores: list[FrameScore]) -> dict:
    """Flat summary: frames, mean/median errors (deg, mm) and latency percentiles (ms)."""
    published = [s for s in scores if s.published and s.joint_errors_deg is not None]
    summary: dict[str, object] = {'frames_played': len(scores),
                                  'frames_published': len(published)}
    if published:
        joint_errors = np.stack([s.joint_errors_deg for s in published])
        translation = np.array([s.camera_translation_error_mm for s in published])
        position = np.array([s.camera_position_error_mm for s in published])
        rotation = np.array([s.camera_rotation_error_deg for s in published])
        summary.update({
            'joint_error_mean_deg': float(joint_errors.mean()),
            'joint_error_median_deg': float(np.median(joint_errors)),
            'camera_translation_error_mean_mm': float(translation.mean()),
            'camera_translation_error_median_mm': float(np.median(translation)),
            'camera_position_error_mean_mm': float(position.mean()),
            'camera_position_error_median_mm': float(np.median(position)),
            'camera_rotation_error_mean_deg': float(rotation.mean()),
            'camera_rotation_error_median_deg': float(np.median(rotation)),
        })
        for name, column in zip(published[0].joint_names, joint_errors.T):
            summary[f'joint_error_mean_deg_{name}'] = float(column.mean())
    for name in ('latency_receive_to_publish_ms', 'inference_ms'):
        values = np.array([getattr(s, name) for s in scores if getattr(s, name) is not None])
        if values.size:
            stem = name[:-3]
            summary[f'{stem}_p50_ms'] = float(np.percentile(values, 50))
            summary[f'{stem}_p95_ms'] = float(np.percentile(values, 95))
    return summary
