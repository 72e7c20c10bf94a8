"""The TAG's loops closed at inference: the robot prior fitted to the network's own keypoints.

The fit moves joints and camera until the robot prior's projected keypoints meet the 2D
keypoints the heatmaps found (each weighted by its heatmap's confidence, robust to outliers),
within joint limits. A fit from one start lands in whichever minimum is nearest (an elbow
flipped, a wrist turned half a turn), so it starts from many: the network's own joints (p², p³)
and a fixed quasi-random spread of joint configurations, each with the camera PnP finds for it;
a few iterations rank them, the best few are refined. Every backend's tensors go through it (it
is part of the shared decoder); ``fit=False`` in the estimator reports the direct heads instead
(the ablation in benchmarks/results/fitting_ablation.json).

Where the robot's encoders are at hand (``/joint_states``; a hand-eye calibration always has
them) the joints are known and only the camera is fitted (``known_joints``): six unknowns against
every keypoint, no mirror minima of the arm, so the camera no longer inherits the joint errors.
The other way round, a camera known already (``known_camera``: a ``.calib``, or a static
camera's running estimate, robotag_ros/calibration/static_camera.py) leaves the joints alone to
fit: a mirrored arm would need the camera on the other side of the robot, so it is out of reach.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import torch

from robotag_ros.geometry import project_points
from robotag_ros.geometry.view import (azimuth_bin_centres, camera_azimuth_elevation,
                                       split_view_logits)
from robotag_ros.inference.fitting import (FitConfig, camera_from_joints_pnp, fit_robot_pose,
                                           keypoint_kinematics)


@dataclass(frozen=True)
class LoopClosingConfig:
    """How many starts, how they are screened, and the fit itself."""

    fit: FitConfig = field(default_factory=FitConfig)
    random_starts: int = 8           # Sobol-spread joint configurations (fixed seed)
    # ... on a tracked frame, which also starts from the previous frame's robot (the arm moved
    # little since): fewer spread starts keep the node's frame time down.
    tracked_random_starts: int = 2
    screening_iterations: int = 4    # iterations every start gets before the ranking
    finalists: int = 3               # starts per frame refined with fit.iterations
    pnp_min_confidence: float = 0.05  # keypoints PnP uses for each start's camera
    # Refine each start's PnP camera (Levenberg-Marquardt) before the screening, which refines
    # camera and joints together anyway.
    pnp_refine: bool = True
    # Each keypoint's weight in the fit is its heatmap confidence to this power: confidence
    # tracks the error closely (log-error correlation -0.76 on held-out frames), and squaring
    # it trusts the sure keypoints more (ADD AUC +2 on the validation frames, joints as before).
    confidence_power: float = 2.0
    # Pull toward known joints, px² per rad²: a 1e-4 rad move costs more than any keypoint's
    # Cauchy cost can pay back, so the fit moves the camera alone.
    known_joint_weight: float = 1.0e10
    # With a view head: candidates ranked with the view prior (px² per nat), and optionally
    # each finalist also turned about the base's z axis (camera and joint 1 together, which
    # leaves the arm's image as it is) to the head's likeliest sector. Chosen on the validation
    # frames (room_val, seed 1003; docs/model-history.md): the prior alone gave the best ADD
    # AUC (40.8 against 40.1 without it); the turned finalists cost time and ADD (34.1).
    view_starts: bool = False
    view_weight: float = 50.0
    # With a keypoint depth head: the fit's depth term on the keypoints' depths relative to the
    # base keypoint, px² per m² (1000: a 3 cm error costs like 1 px). Off by default: with
    # today's depth head it removes a few mirrored frames (28.5 -> 25 %) but costs ADD AUC
    # (40.1 -> 33.9) on the validation frames.
    keypoint_depth_weight: float = 0.0


def spread_joint_starts(robot, count: int) -> torch.Tensor:
    """(count, n) joint configurations spread over the limits (scrambled Sobol, fixed seed)."""
    if count <= 0:
        return robot.joint_limits.new_zeros((0, robot.num_joints))
    engine = torch.quasirandom.SobolEngine(robot.num_joints, scramble=True, seed=0)
    unit = engine.draw(count).to(robot.joint_limits)
    limits = robot.joint_limits
    return limits[:, 0] + unit * (limits[:, 1] - limits[:, 0])


def turned_to_azimuth(robot, joints: torch.Tensor, cameras: torch.Tensor,
                      azimuth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The same starts turned about the base's z axis so that each camera sits at ``azimuth``
    (B,) radians: the camera turns by δ about the base and joint 1 by δ, which leaves every
    keypoint past the base where it was in the image. None when the robot's first joint does
    not turn about the base's z axis (then no such trade exists)."""
    sign = robot.first_joint_turns_base
    if sign is None:
        return None
    current, _ = camera_azimuth_elevation(cameras)                           # (B, S)
    delta = torch.remainder(azimuth[:, None] - current + math.pi, 2 * math.pi) - math.pi
    cos, sin = torch.cos(delta), torch.sin(delta)
    turn = torch.zeros(*delta.shape, 4, 4, dtype=cameras.dtype, device=cameras.device)
    turn[..., 0, 0], turn[..., 0, 1], turn[..., 1, 0], turn[..., 1, 1] = cos, sin, -sin, cos
    turn[..., 2, 2] = turn[..., 3, 3] = 1.0                                  # Rz(-δ)
    turned = joints.clone()
    turned[..., 0] = turned[..., 0] + sign * delta
    limits = robot.joint_limits.to(joints)
    turned = torch.maximum(torch.minimum(turned, limits[:, 1]), limits[:, 0])
    return turned, cameras @ turn


def _joint_candidates(states: dict[str, torch.Tensor], robot, intrinsics: torch.Tensor,
                      config: LoopClosingConfig, lifter=None) -> torch.Tensor:
    """(B, S, n) joint starts: p², p³, the spread and the lifter's hypotheses."""
    peaks, confidence = states['keypoints_2d_peak'], states['keypoints_2d_confidence']
    batch = peaks.shape[0]
    spread = spread_joint_starts(robot, config.random_starts).to(peaks)
    candidates = [states['joint_angles_2d'][:, None], states['joint_angles_3d'][:, None],
                  spread[None].expand(batch, -1, -1)]
    if lifter is not None:
        candidates.append(lifter(peaks, confidence, intrinsics).to(peaks))
    return torch.cat(candidates, 1)


def _starts(states: dict[str, torch.Tensor], robot, intrinsics: torch.Tensor,
            config: LoopClosingConfig, lifter=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, S, n) joints and (B, S, 4, 4) cameras: the network's joints with its regressed camera,
    then every joint start (p², p³, the lifter's hypotheses, the spread) with the camera PnP
    finds for it (the regressed one where PnP fails)."""
    peaks, confidence = states['keypoints_2d_peak'], states['keypoints_2d_confidence']
    batch = peaks.shape[0]
    joints = _joint_candidates(states, robot, intrinsics, config, lifter)   # (B, S, n)
    count = joints.shape[1]
    pnp = camera_from_joints_pnp(
        robot, joints.reshape(batch * count, -1), peaks.repeat_interleave(count, 0),
        confidence.repeat_interleave(count, 0), intrinsics.repeat_interleave(count, 0),
        min_weight=config.pnp_min_confidence, refine=config.pnp_refine
    ).reshape(batch, count, 4, 4)
    regressed = states['T_cam_base'][:, None].expand(-1, count, -1, -1)
    failed = ~torch.isfinite(pnp).flatten(2).all(-1)
    cameras = torch.where(failed[..., None, None], regressed, pnp)
    joints = torch.cat([states['joint_angles_2d'][:, None], joints], 1)
    cameras = torch.cat([states['T_cam_base'][:, None], cameras], 1)
    return joints, cameras


def _known_camera_starts(states: dict[str, torch.Tensor], robot, intrinsics: torch.Tensor,
                         known_camera: torch.Tensor, config: LoopClosingConfig, lifter=None
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """Every joint start (p², p³, the spread, the lifter's) seen from the known camera."""
    joints = _joint_candidates(states, robot, intrinsics, config, lifter)
    cameras = known_camera.to(joints)[:, None].expand(-1, joints.shape[1], -1, -1)
    return joints, cameras


def _with_turned(robot, joints: torch.Tensor, cameras: torch.Tensor, log_azimuth
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """The finalists and, beside them, each turned to the view head's likeliest sector about
    the base (camera and joint 1 together): the fit then weighs both against the view prior."""
    likeliest = azimuth_bin_centres(log_azimuth.shape[-1], log_azimuth)[
        log_azimuth.argmax(-1)].to(cameras)
    turned = turned_to_azimuth(robot, joints, cameras, likeliest)
    if turned is None:
        return joints, cameras
    return torch.cat([joints, turned[0]], 1), torch.cat([cameras, turned[1]], 1)


def _screen(states, robot, intrinsics, joints, cameras, config, cues
            ) -> tuple[torch.Tensor, ...]:
    """A few iterations from every start; the ``finalists`` lowest-cost results per frame."""
    batch, count = joints.shape[:2]
    repeat = lambda tensor: tensor.repeat_interleave(count, 0)  # noqa: E731
    peaks = repeat(states['keypoints_2d_peak'])
    weights = repeat(fit_weights(states, config))
    short = replace(config.fit, iterations=config.screening_iterations)
    cues = {name: (tuple(repeat(t) for t in value) if isinstance(value, tuple) else repeat(value))
            for name, value in cues.items()}
    screened = fit_robot_pose(robot, peaks, weights, repeat(intrinsics),
                              joints.reshape(batch * count, 1, -1),
                              cameras.reshape(batch * count, 1, 4, 4), short, **cues)
    keep = min(config.finalists, count)
    best = screened.cost.reshape(batch, count).topk(keep, dim=1, largest=False).indices
    rows = (torch.arange(batch, device=best.device)[:, None] * count + best).reshape(-1)
    return (screened.joint_angles[rows].reshape(batch, keep, -1),
            screened.T_cam_base[rows].reshape(batch, keep, 4, 4))


def fit_weights(states: dict[str, torch.Tensor], config: LoopClosingConfig) -> torch.Tensor:
    """(B, K) each keypoint's weight in the fit, from its heatmap confidence."""
    return states['keypoints_2d_confidence'].clamp(min=0.0) ** config.confidence_power


def _known_joint_starts(states: dict[str, torch.Tensor], robot, intrinsics: torch.Tensor,
                        known_joints: torch.Tensor, config: LoopClosingConfig
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """The known joints twice: with the camera PnP finds for them, and the regressed one."""
    known = known_joints.to(states['keypoints_2d_peak'])
    pnp = camera_from_joints_pnp(robot, known, states['keypoints_2d_peak'],
                                 states['keypoints_2d_confidence'], intrinsics,
                                 min_weight=config.pnp_min_confidence)
    return (torch.stack((known, known), 1),
            torch.stack((pnp, states['T_cam_base'].to(pnp)), 1))


def _cues(states: dict[str, torch.Tensor], config: LoopClosingConfig, view_azimuth_bins: int,
          keypoint_depths: bool) -> tuple[dict, LoopClosingConfig]:
    """What the optional heads add to the fit (keyword arguments of fit_robot_pose), and the
    config with their weights in the fit's settings."""
    cues, fit = {}, config.fit
    if view_azimuth_bins and config.view_weight > 0:
        cues['view_log_probs'] = split_view_logits(states['view_logits'], view_azimuth_bins)
        fit = replace(fit, view_weight=config.view_weight)
    if keypoint_depths and config.keypoint_depth_weight > 0:
        cues['keypoint_depths_m'] = states['keypoint_relative_depth']
        fit = replace(fit, depth_relative_to_first=True, depth_weight=config.keypoint_depth_weight)
    return cues, replace(config, fit=fit)


def close_loops(states: dict[str, torch.Tensor], robot, intrinsics: torch.Tensor,
                config: LoopClosingConfig = LoopClosingConfig(),
                lifter=None, starts=None, known_joints=None, known_camera=None,
                view_azimuth_bins: int = 0, keypoint_depths: bool = False, previous=None
                ) -> dict[str, torch.Tensor]:
    """Decoded states -> the same with the reported joints, camera and keypoints from the fit,
    plus ``fit_residual_px`` (B,): the confidence-weighted mean reprojection residual.
    ``lifter``: the model's KeypointLifter (its hypotheses join the starts), or None.
    ``starts``: (joints (B, S, n), cameras (B, S, 4, 4)) to fit from instead of the network's
    and the spread (the diagnostics of benchmarks/fitting_ablation.py start from the truth).
    ``known_joints``: (B, n) measured joint angles (radians): they are reported as they are and
    only the camera is fitted. ``known_camera``: (B, 4, 4) T_cam_base (metres) of a camera known
    already (a calibration, a static camera's running estimate): it is reported as it is and
    only the joints are fitted, from every joint start. ``view_azimuth_bins`` (the model's view
    head; 0: none) and ``keypoint_depths`` (it has a keypoint depth head): the fit reads those
    outputs too. ``previous``: (joints (B, n), cameras (B, 4, 4)) the robot of each frame's
    predecessor (tracking): one more start, and ``config.tracked_random_starts`` spread ones."""
    cues, config = _cues(states, config, view_azimuth_bins, keypoint_depths)
    if known_joints is not None and known_camera is not None:
        raise ValueError('known_joints and known_camera together leave nothing to fit')
    if known_camera is not None:
        if not torch.isfinite(known_camera).all():
            raise ValueError('known_camera must be finite')
        starts = _known_camera_starts(states, robot, intrinsics, known_camera, config, lifter)
        config = replace(config, fit=replace(config.fit, fit_camera=False))
    if known_joints is not None:
        if not torch.isfinite(known_joints).all():
            raise ValueError('known_joints must be finite (every joint of every frame)')
        starts = _known_joint_starts(states, robot, intrinsics, known_joints, config)
        config = replace(config, fit=replace(config.fit,
                                             joint_prior_weight=config.known_joint_weight))
    if starts is None and previous is not None and known_joints is None \
            and known_camera is None:
        joints, cameras = _starts(states, robot, intrinsics,
                                  replace(config, random_starts=config.tracked_random_starts),
                                  lifter)
        starts = (torch.cat([joints, previous[0].to(joints)[:, None]], 1),
                  torch.cat([cameras, previous[1].to(cameras)[:, None]], 1))
    joints, cameras = starts if starts is not None else _starts(
        states, robot, intrinsics, config, lifter)
    joints, cameras = _screen(states, robot, intrinsics, joints, cameras, config, cues)
    if 'view_log_probs' in cues and config.view_starts and known_joints is None \
            and known_camera is None:   # a turn moves the camera
        joints, cameras = _with_turned(robot, joints, cameras, cues['view_log_probs'][0])
    result = fit_robot_pose(robot, states['keypoints_2d_peak'], fit_weights(states, config),
                            intrinsics, joints, cameras, config.fit, **cues)
    fitted = dict(states)
    fitted['joint_angles'] = (result.joint_angles if known_joints is None
                              else known_joints).to(states['joint_angles'])
    fitted['T_cam_base'] = (result.T_cam_base if known_camera is None
                            else known_camera).to(states['T_cam_base'])
    # The fit's own keypoint kinematics: robot.keypoints would also move the 2k mesh points.
    keypoints_base = torch.from_numpy(keypoint_kinematics(robot)(
        fitted['joint_angles'].detach().cpu().double().numpy())[0]).to(fitted['T_cam_base'])
    rotation = fitted['T_cam_base'][:, :3, :3]
    translation = fitted['T_cam_base'][:, None, :3, 3]
    keypoints_cam = keypoints_base @ rotation.transpose(1, 2) + translation
    fitted['keypoints_3d'] = keypoints_cam
    fitted['keypoints_2d_final'] = project_points(keypoints_cam, intrinsics)
    # The reported residual keeps the plain confidence weighting (the consistency score's).
    weights = states['keypoints_2d_confidence']
    residual = result.residual_px.to(weights.dtype)
    fitted['fit_residual_px'] = (residual * weights).sum(-1) / weights.sum(-1).clamp(min=1e-6)
    return fitted
