"""Estimator: one image + intrinsics in, one Estimate out, whatever the backend."""
from __future__ import annotations

import contextlib
import inspect
import os
import time
from dataclasses import replace
from typing import Optional, Sequence

import numpy as np
import torch

from robotag_ros.inference.backends import (BACKEND_CHOICES, OnnxRuntimeBackend, TensorRTBackend,
                                            TorchBackend, require_backend, resolve_backend)
from robotag_ros.inference.decode import (JOINT_SOURCES, as_tensors, decode_states,
                                          to_estimates)
from robotag_ros.inference.estimate import Estimate
from robotag_ros.inference.fit_settings import FitSettings, fit_settings
from robotag_ros.inference.loop_closing import close_loops
from robotag_ros.inference.preprocess import preprocess, preprocess_crop
from robotag_ros.inference.two_pass import CropPolicy, RobotBox, robot_box
from robotag_ros.model.artifact import artifact_paths, load_model


@contextlib.contextmanager
def _cpu_threads(count: int):
    """PyTorch intra-op threads set to ``count`` (0: unchanged) inside the block.

    Decoding is a few hundred small ops; with 2 threads each parallel region waits at a barrier
    for a thread that another process (or ONNX Runtime's pool) has pushed off a core: decode
    3 ms -> 70 ms on a busy two-core machine. One thread is steady.
    """
    previous = torch.get_num_threads()
    if count and count != previous:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        if count and count != previous:
            torch.set_num_threads(previous)


def _previous_robots(boxes, like: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The loop closer's ``previous`` when every frame's box carries its predecessor's robot
    (tracked frames; a batch with one untracked frame fits every frame from scratch)."""
    if not boxes or any(box is None or box.joint_angles_rad is None or box.T_cam_base is None
                        for box in boxes):
        return {}
    return {'previous': (
        torch.as_tensor(np.stack([box.joint_angles_rad for box in boxes])).to(like),
        torch.as_tensor(np.stack([box.T_cam_base for box in boxes])).to(like))}


class Estimator:
    """Joint angles, camera pose and keypoints from one RGB image, on the chosen backend.

    Preprocessing (input size, colour order, normalisation, letterbox padding) and the fit's
    settings come from the artifact's sidecar, never from constants. Build one with
    :meth:`from_artifact` (files already exported; the node and the tools use
    :func:`robotag_ros.estimator_factory.load_estimator`, which exports them on first use) or
    :meth:`from_model` (evaluation during training).
    """

    def __init__(self, model, input_hw, backend, joint_source: str = '2d',
                 decode_device: str | torch.device = 'cpu', sidecar=None,
                 two_pass: bool = True, fit: bool = True,
                 crop_policy: CropPolicy = CropPolicy(),
                 settings: Optional[FitSettings] = None, loop_closer=close_loops):
        if joint_source not in JOINT_SOURCES:
            raise ValueError(f'joint_source must be one of {JOINT_SOURCES}, not {joint_source!r}')
        self.model, self.sidecar, self.backend = model, sidecar, backend
        self.robot = model.robot
        self.input_hw = tuple(int(v) for v in input_hw)
        # An artifact's model holds its sidecar's preprocessing (load_model), a new one its own.
        self.preprocessing = model.preprocessing
        self.joint_source = joint_source
        self.backend_name = backend.name
        # Decoding (FK, projection, scoring) runs where the network's tensors land.
        self.decode_device = torch.device(decode_device)
        self.robot.to(self.decode_device)
        # two_pass: find the robot on the whole frame, then look again at a box around it.
        # fit: close the TAG's loops at inference (inference/loop_closing.py).
        self.two_pass, self.fit, self.crop_policy = two_pass, fit, crop_policy
        self.fit_settings = settings or FitSettings()
        # What closes the loops: close_loops, or a stand-in with its signature (the fitting
        # ablation's oracles hand the fit each frame's labels to bound what it can reach).
        self.loop_closer = loop_closer
        # Warm starts from the previous frame go only to a closer that takes them.
        self._closer_takes_previous = 'previous' in inspect.signature(loop_closer).parameters

    @classmethod
    def from_artifact(cls, artifact: str | os.PathLike, backend: str = 'torch',
                      device: str = 'cpu', precision: str = 'fp32',
                      onnx_path: Optional[str | os.PathLike] = None,
                      engine_path: Optional[str | os.PathLike] = None,
                      compile_mode: Optional[str] = None, joint_source: Optional[str] = None,
                      threads: int = 0, robot=None, two_pass: bool = True, fit: bool = True,
                      fit_overrides: Optional[dict] = None,
                      loop_closer=close_loops) -> 'Estimator':
        """An Estimator for a model artifact (``models/panda_default`` or either of its files).

        ``backend``: 'auto' (ONNX Runtime on CPU, PyTorch on CUDA), 'torch' (``device`` cpu/cuda,
        ``precision`` fp32/fp16/bf16 on CUDA, ``compile_mode`` e.g. 'reduce-overhead' for CUDA
        graphs), 'onnxruntime' (runs ``onnx_path``; ``device`` cpu/cuda/tensorrt execution
        providers; ``threads`` 0 = ONNX Runtime's default) or 'tensorrt' (runs the plan at
        ``engine_path``). Those files come from robotag-export, or from
        :func:`robotag_ros.estimator_factory.load_estimator`, which exports and caches them.
        ``joint_source`` overrides the sidecar's ``training.joint_source`` (default '2d').
        ``robot``: an already loaded RobotModel (checked against the sidecar) instead of
        loading the sidecar's. ``two_pass`` and ``fit``: see :meth:`estimate_batch` (both on by
        default; off gives the direct heads on the whole frame, the ablation's baseline).
        ``fit_overrides``: keys of :class:`FitSettings` (e.g. ``{'track_max_residual_px': 15,
        'loop_closing': {'finalists': 5}}``) over the sidecar's ``fit`` section.
        ``loop_closer``: a stand-in for :func:`close_loops` with its signature.
        """
        if backend not in BACKEND_CHOICES:
            raise ValueError(f'backend must be one of {BACKEND_CHOICES}, not {backend!r}')
        backend = resolve_backend(backend, device)
        require_backend(backend, device)
        exported = {'onnxruntime': ('onnx_path', onnx_path),
                    'tensorrt': ('engine_path', engine_path)}.get(backend)
        if exported is not None and exported[1] is None:
            raise ValueError(f"backend '{backend}' runs an exported file: pass {exported[0]}, "
                             'or load with robotag_ros.estimator_factory.load_estimator (it '
                             'exports into the cache on first use)')
        model, sidecar = load_model(artifact, robot=robot, device='cpu')
        settings = fit_settings(sidecar.fit, fit_overrides, str(artifact_paths(artifact)[1]))
        input_hw = tuple(int(v) for v in sidecar.input_size)
        if backend == 'torch':
            runner = TorchBackend(model, device=device, precision=precision,
                                  compile_mode=compile_mode)
        elif backend == 'onnxruntime':
            runner = OnnxRuntimeBackend(onnx_path, device=device, threads=threads,
                                        input_hw=input_hw, preprocessing=sidecar.preprocessing)
        else:
            runner = TensorRTBackend(engine_path)
        return cls(model, input_hw, runner,
                   joint_source or sidecar.training.get('joint_source', '2d'),
                   decode_device=device if backend == 'torch' else 'cpu', sidecar=sidecar,
                   two_pass=two_pass, fit=fit, settings=settings, loop_closer=loop_closer)

    @classmethod
    def from_model(cls, model, input_hw, joint_source: str = '2d', **options) -> 'Estimator':
        """Wrap an in-memory model (torch backend, on the model's device)."""
        device = next(model.parameters()).device
        return cls(model, input_hw, TorchBackend(model, device=str(device)), joint_source,
                   decode_device=device, **options)

    def _run(self, prepared) -> tuple[dict[str, torch.Tensor], np.ndarray]:
        batch_image = np.concatenate([p[0] for p in prepared])
        batch_K = np.concatenate([p[1] for p in prepared])
        network = as_tensors(self.backend.run(batch_image, batch_K), self.decode_device)
        if self.decode_device.type == 'cuda':
            torch.cuda.synchronize()
        return network, batch_K

    def find_robots(self, images_rgb: Sequence[np.ndarray],
                    intrinsics: Sequence[np.ndarray]) -> list[RobotBox]:
        """The first pass: the whole frames letterboxed, a box around each robot's keypoints."""
        prepared = [preprocess(image, np.asarray(K, dtype=np.float64), self.input_hw,
                               self.preprocessing)
                    for image, K in zip(images_rgb, intrinsics)]
        network, _ = self._run(prepared)
        peaks = network['keypoints_2d_peak'].double().cpu().numpy()
        confidence = network['keypoints_2d_confidence'].double().cpu().numpy()
        return [robot_box(p[2].to_source_px(peaks[b]), confidence[b], self.crop_policy)
                for b, p in enumerate(prepared)]

    @torch.inference_mode()
    def estimate_batch(self, images_rgb: Sequence[np.ndarray],
                       intrinsics: Sequence[np.ndarray], with_points: bool = True,
                       boxes: Optional[Sequence[Optional[RobotBox]]] = None,
                       joint_angles_rad: Optional[Sequence[np.ndarray]] = None,
                       T_cam_base: Optional[Sequence[np.ndarray]] = None
                       ) -> list[Estimate]:
        """Several frames (HxWx3 uint8 RGB each, 3x3 K each) in one network call per pass.

        With ``two_pass`` the network first sees each whole frame (letterboxed) to find the
        robot, then a square box around it; ``boxes`` (e.g. each camera's previous
        ``Estimate.robot_box``) skip the first pass for the frames that have one. With ``fit``
        the reported joints and camera come from closing the loops (loop_closing.py).
        ``joint_angles_rad``: the measured joints of each frame (the robot's order), when the
        encoders are at hand: they are reported as given and only the camera is fitted.
        ``T_cam_base``: each frame's camera (4x4, metres) when it is known (a ``.calib``, a
        static camera's running estimate): it is reported as given and only the joints are
        fitted.
        """
        started = time.perf_counter()
        known = self._known(len(images_rgb), joint_angles_rad, T_cam_base)
        intrinsics = [np.asarray(K, dtype=np.float64) for K in intrinsics]
        if self.two_pass:
            boxes = list(boxes) if boxes is not None else [None] * len(images_rgb)
            missing = [i for i, box in enumerate(boxes) if box is None]
            if missing:
                found = self.find_robots([images_rgb[i] for i in missing],
                                         [intrinsics[i] for i in missing])
                for i, box in zip(missing, found):
                    boxes[i] = box
            prepared = [preprocess_crop(image, K, box.centre_px, box.size_px, self.input_hw,
                                        self.preprocessing)
                        for image, K, box in zip(images_rgb, intrinsics, boxes)]
        else:
            boxes = [None] * len(images_rgb)
            prepared = [preprocess(image, K, self.input_hw, self.preprocessing)
                        for image, K in zip(images_rgb, intrinsics)]
        preprocessed = time.perf_counter()
        network, batch_K = self._run(prepared)
        inferred = time.perf_counter()
        letterboxes = [p[2] for p in prepared]
        K_t = torch.as_tensor(batch_K, device=self.decode_device)
        with _cpu_threads(1 if self.decode_device.type == 'cpu' else 0):
            states = decode_states(network, self.robot, K_t, self.input_hw, self.model.config,
                                   self.joint_source)
            if self.fit:   # what is known is only passed on (a closer need not know it)
                known = {name: value.to(K_t) for name, value in known.items()}
                if not known and self._closer_takes_previous:
                    known.update(_previous_robots(boxes, K_t))
                states = self.loop_closer(
                    states, self.robot, K_t, self.fit_settings.loop_closing,
                    lifter=self.model.keypoint_lifter,
                    view_azimuth_bins=self.model.config.view_azimuth_bins,
                    keypoint_depths=self.model.config.keypoint_depth_head, **known)
            estimates = to_estimates(states, self.robot, letterboxes, with_points=with_points,
                                     scales=self.fit_settings.consistency_scales,
                                     view_azimuth_bins=self.model.config.view_azimuth_bins)
        decoded = time.perf_counter()
        timings = {'preprocess_ms': 1e3 * (preprocessed - started),
                   'inference_ms': 1e3 * (inferred - preprocessed),
                   'decode_ms': 1e3 * (decoded - inferred),
                   'total_ms': 1e3 * (decoded - started)}
        for estimate, box in zip(estimates, boxes):
            estimate.timings_ms = dict(timings)
            estimate.robot_box = box
        return estimates

    def _known(self, count: int, joint_angles_rad, T_cam_base) -> dict[str, torch.Tensor]:
        """The loop closer's ``known_joints`` / ``known_camera`` from the caller's arrays,
        checked (shapes, the fit on, not both)."""
        known = {}
        for name, values, shape, what in (
                ('known_joints', joint_angles_rad, (self.robot.num_joints,), 'joint angles'),
                ('known_camera', T_cam_base, (4, 4), 'T_cam_base')):
            if values is None:
                continue
            if not self.fit:
                raise ValueError(f'known {what} need the fit (fit=True): the rest is fitted '
                                 'to them')
            tensor = torch.as_tensor(np.stack([np.asarray(v, dtype=np.float64)
                                               for v in values]))
            if tuple(tensor.shape) != (count, *shape):
                raise ValueError(f'expected {count} x {" x ".join(map(str, shape))} {what}; '
                                 f'got {tuple(tensor.shape)}')
            known[name] = tensor
        if len(known) == 2:
            raise ValueError('measured joint angles and a known T_cam_base together leave '
                             'nothing to estimate')
        return known

    # What every PoseEstimator states (inference/estimate.py), read off the robot description.
    @property
    def robot_name(self) -> str:
        return self.robot.name

    @property
    def base_frame(self) -> str:
        return self.robot.base_frame

    @property
    def joint_names(self) -> list[str]:
        return list(self.robot.joint_names)

    def next_box(self, estimate: Estimate) -> Optional[RobotBox]:
        """Where to look in the next frame of the same camera: around this frame's robot, if
        the estimate is trustworthy (else None: the next frame runs the first pass)."""
        if not self.two_pass or not estimate.is_finite():
            return None
        # The box only has to hold the robot: the fit's residual says whether the keypoints sit
        # on one robot (the branch terms of the score may disagree while the box is right).
        residual = estimate.consistency_terms.get('fit_residual_px')
        trusted = residual < self.fit_settings.track_max_residual_px if residual is not None \
            else estimate.consistency >= 0.3
        if not trusted:
            return None
        return replace(robot_box(estimate.keypoints_2d_px, None, self.crop_policy),
                       joint_angles_rad=np.array(estimate.joint_angles_rad, dtype=np.float64),
                       T_cam_base=np.array(estimate.T_cam_base, dtype=np.float64))

    def estimate(self, image_rgb: np.ndarray, K: np.ndarray, with_points: bool = True,
                 box: Optional[RobotBox] = None,
                 joint_angles_rad: Optional[np.ndarray] = None,
                 T_cam_base: Optional[np.ndarray] = None) -> Estimate:
        """One HxWx3 uint8 RGB image and its 3x3 intrinsics (pixels) -> Estimate
        (``joint_angles_rad``: measured joints, ``T_cam_base``: a known camera; see
        estimate_batch)."""
        return self.estimate_batch(
            [image_rgb], [K], with_points=with_points, boxes=[box],
            joint_angles_rad=None if joint_angles_rad is None else [joint_angles_rad],
            T_cam_base=None if T_cam_base is None else [T_cam_base])[0]
