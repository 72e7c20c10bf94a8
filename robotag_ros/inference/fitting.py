"""Test-time loop closing: fit joint angles and camera pose to the network's 2D keypoints.

The robot prior's keypoints, posed by the joint angles and projected by the camera pose, are
pulled onto the keypoints the network predicts by a batched Levenberg-Marquardt over
x = (q, dω, dt): a Cauchy loss (IRLS weights) bounds the pull of outliers, a weak prior toward
the start's joints keeps joints that no keypoint sees where the network put them, and an
optional term on the 3D branch's keypoint depths helps pin the scale. Every start of every
frame is refined in one batch; the lowest final cost wins.

The joint Jacobian is analytic (for a revolute joint, dp/dq = axis x (p - joint origin)), from
one small forward kinematics per iteration (:class:`KeypointKinematics`, tested equal to
:meth:`RobotModel.keypoints`): pytorch-kinematics costs ~0.6 ms a call, too much for a loop that
runs 15 times per frame in a real-time node. The problem is tiny (n + 6 unknowns, K keypoints
per frame), so its time is per-call overhead, and the solver runs in float64 NumPy, whose
overhead per operation is a third of PyTorch's; the API takes and returns tensors.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import NamedTuple, Optional

import cv2
import numpy as np
import torch

from robotag_ros.geometry.view import view_log_likelihood
from robotag_ros.robot.model import RobotModel

_REVOLUTE_TYPES = ('revolute', 'continuous')


@dataclass(frozen=True)
class FitConfig:
    """Settings of :func:`fit_robot_pose`; costs are in squared pixels."""

    iterations: int = 15
    robust_scale_px: float = 8.0       # Cauchy scale of the reprojection residual
    # Pull toward the start's joints, px² per rad²: negligible next to a keypoint that a joint
    # moves (~1e4 px²/rad²), decisive for a joint that no keypoint sees.
    joint_prior_weight: float = 1.0
    # Depth term, px² per m²: 1000 makes a 3 cm depth error cost like a 1 px reprojection error.
    depth_weight: float = 1000.0
    # The depths given are each keypoint's depth minus the first (base) keypoint's (the keypoint
    # depth head's), not camera-frame depths.
    depth_relative_to_first: bool = False
    # View prior, px² per nat: a candidate whose camera sits where the view head finds it
    # unlikely (a mirrored arm puts it on the other side) pays this per nat of log-likelihood.
    view_weight: float = 0.0
    damping: float = 1e-3              # initial LM lambda (times the diagonal of J'WJ)
    # Keypoints nearer than this, or behind the camera, project as if at this depth, without a
    # depth derivative, so residuals stay finite.
    min_depth_m: float = 0.02
    step_tolerance: float = 1e-7       # stop once every frame's step is this small (rad, m)
    # Or once every start has settled: an accepted step gained less than this share of its
    # cost (0: run every iteration). Later iterations then move the keypoints by well under a
    # pixel, and each costs the node ~1 ms. 3e-3: the node's fit 28 -> 23 ms of CPU, room_val
    # (100 frames, one at a time) ADD AUC 44.3 -> 44.5, joints 31.3 -> 31.2 deg.
    cost_tolerance: float = 3.0e-3
    # False: the camera stays at each start's T_cam_base and only the joint block of the normal
    # equations is solved (a camera known from a calibration or a static camera's running
    # estimate: the mirrored arm, which needs the camera on the other side, is out of reach).
    fit_camera: bool = True
    # Look-alike keypoints (the robot description's interchangeable pairs, two fingertips)
    # matched to whichever of the pair's projections is nearer, every this many iterations
    # (0: as labelled). The heatmaps are trained not to tell the fingers apart, so their labels
    # are a coin toss (42 % of a recording's frames swapped); but the fit can turn joint 7 half
    # a turn to follow them, and on the validation frames matching did not help (room_val, 200
    # frames: ADD AUC 38.5 -> 37.8, joints 1-6 31.4 -> 31.6 deg), so it is off here. The
    # calibration, whose joints are measured, matches them (joint_camera_fit.py).
    reassign_every: int = 0


@dataclass
class FitResult:
    """The best start's fit per frame."""

    joint_angles: torch.Tensor     # (B, n) radians, within limits
    T_cam_base: torch.Tensor       # (B, 4, 4)
    residual_px: torch.Tensor      # (B, K) per-keypoint reprojection error, pixels
    cost: torch.Tensor             # (B,) final robust cost (inf when no start was finite)
    start_index: torch.Tensor      # (B,) which start won


def skew(vectors: np.ndarray) -> np.ndarray:
    """(..., 3) -> (..., 3, 3) cross-product matrices: skew(a) @ b = a x b."""
    x, y, z = vectors[..., 0], vectors[..., 1], vectors[..., 2]
    zero = np.zeros_like(x)
    return np.stack((zero, -z, y, z, zero, -x, -y, x, zero), -1).reshape(*vectors.shape, 3)


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a x b over the last axis, broadcast (np.cross is several times slower on small arrays)."""
    return np.stack((a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1],
                     a[..., 2] * b[..., 0] - a[..., 0] * b[..., 2],
                     a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]), -1)


def projection_jacobian(d_points: np.ndarray, normalised: np.ndarray, in_front: np.ndarray,
                        focal: np.ndarray, inv_depth: np.ndarray) -> np.ndarray:
    """d pixel / d unknown from d camera point / d unknown (unknowns on axis 1 of ``d_points``,
    (..., 3) last); the points' normalised image coordinates, in-front mask, focal lengths and
    inverse depths lack that axis. No depth derivative where the depth is clamped."""
    return (d_points[..., :2] - d_points[..., 2:] * (normalised * in_front)[:, None]) \
        * (focal * inv_depth)[:, None]


def so3_exp(rotation_vectors: np.ndarray) -> np.ndarray:
    """Rotation vectors (M, 3) -> matrices (M, 3, 3): I + sin a/a K + (1 - cos a)/a² K²."""
    angle = np.linalg.norm(rotation_vectors, axis=-1)[:, None, None]
    cross = skew(rotation_vectors)
    # sinc is exact at 0, and (1 - cos a)/a² = sinc(a/2)²/2: no 0/0 at a zero step.
    return np.eye(3) + np.sinc(angle / np.pi) * cross \
        + 0.5 * np.sinc(angle / (2.0 * np.pi)) ** 2 * (cross @ cross)


class KeypointKinematics:
    """Forward kinematics of a revolute robot's keypoints and joint axes, float64 NumPy.

    Each estimated joint's frame is its parent joint's frame times a fixed transform C times
    the rotation about its axis; each keypoint is a fixed point in the frame of the nearest
    estimated joint above its link (fixed and held joints folded in). C and the points are read
    from the robot's own forward kinematics at q = 0, the tree from its URDF.
    """

    def __init__(self, robot: RobotModel):
        joint_to = {joint.child: joint for joint in robot.description.urdf.robot.joints}
        index = {name: i for i, name in enumerate(robot.joint_names)}
        by_index = {index[j.name]: j for j in joint_to.values() if j.name in index}
        for joint in by_index.values():
            if joint.type not in _REVOLUTE_TYPES:
                raise ValueError(f'joint {joint.name} is {joint.type}; fitting handles revolute '
                                 'joints only')

        def anchor(link: str) -> int:  # nearest estimated joint at or above link; -1: the base
            while link != robot.base_frame:
                if link not in joint_to:
                    raise ValueError(f'link {link} is not below the base {robot.base_frame}')
                if joint_to[link].name in index:
                    return index[joint_to[link].name]
                link = joint_to[link].parent
            return -1

        n = robot.num_joints
        self.parent = [anchor(by_index[j].parent) for j in range(n)]
        self.order = sorted(range(n), key=lambda j: len(self._ancestors(j)))  # parents first

        links = list(dict.fromkeys([by_index[j].child for j in range(n)] + robot.keypoint_links))
        zero = torch.zeros(1, n, dtype=torch.float64, device=robot.joint_limits.device)
        poses = {link: pose[0].cpu().numpy()
                 for link, pose in robot.link_poses(zero, links).items()}

        def pose_of(joint: int) -> np.ndarray:  # T_base_frame of a joint's frame at q = 0
            return np.eye(4) if joint < 0 else poses[by_index[joint].child]

        offsets = np.stack([np.linalg.solve(pose_of(self.parent[j]), pose_of(j))
                            for j in range(n)])                               # (n, 4, 4)
        axes = np.stack([by_index[j].axis for j in range(n)]).astype(np.float64)
        self.axes = axes / np.linalg.norm(axes, axis=-1, keepdims=True)       # (n, 3)
        cross = np.zeros((n, 4, 4))
        cross[:, :3, :3] = skew(self.axes)
        # C R(q) = C + sin q (C K) + (1 - cos q) (C K²): Rodrigues with C folded in.
        self.offsets, self.offsets_skew, self.offsets_skew_sq = \
            offsets, offsets @ cross, offsets @ cross @ cross

        anchors = [anchor(link) for link in robot.keypoint_links]
        self.keypoint_frame = np.array(anchors) + 1                           # 0: the base
        self.keypoint_local = np.stack([                                      # (K, 4)
            np.linalg.solve(pose_of(a), poses[link]) @ np.array(keypoint.offset_m + (1.0,))
            for a, link, keypoint in zip(anchors, robot.keypoint_links,
                                         robot.description.keypoints)])
        # moves[j, k]: joint j moves keypoint k (it is k's anchor or above it).
        self.moves = np.zeros((n, len(anchors), 1))
        for k, a in enumerate(anchors):
            for j in ([a] + self._ancestors(a) if a >= 0 else []):
                self.moves[j, k] = 1.0

    def _ancestors(self, joint: int) -> list[int]:
        chain = []
        while self.parent[joint] >= 0:
            joint = self.parent[joint]
            chain.append(joint)
        return chain

    def __call__(self, joint_angles: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(M, n) radians -> keypoints (M, K, 3), joint axes (M, n, 3), joint origins (M, n, 3).

        Base frame, metres. A point p moves by axis x (p - origin) per radian of a joint that
        moves it (:meth:`jacobian`).
        """
        sin = np.sin(joint_angles)[..., None, None]
        cos = np.cos(joint_angles)[..., None, None]
        local = self.offsets + sin * self.offsets_skew + (1.0 - cos) * self.offsets_skew_sq
        frames = np.empty((len(joint_angles), len(self.order) + 1, 4, 4))
        frames[:, 0] = np.eye(4)
        for j in self.order:
            frames[:, j + 1] = frames[:, self.parent[j] + 1] @ local[:, j]
        frames = frames[:, :, :3]                                             # (M, n+1, 3, 4)
        keypoints = (frames[:, self.keypoint_frame] * self.keypoint_local[:, None]).sum(-1)
        axes = (frames[:, 1:, :, :3] * self.axes[:, None]).sum(-1)
        return keypoints, axes, frames[:, 1:, :, 3]

    def jacobian(self, points: np.ndarray, axes: np.ndarray, origins: np.ndarray) -> np.ndarray:
        """d keypoint / d joint (M, n, K, 3) from :meth:`__call__`'s outputs in any one frame."""
        return _cross(axes[:, :, None], points[:, None] - origins[:, :, None]) * self.moves


def interchangeable_order(detected_px: np.ndarray, projected_px: np.ndarray,
                          weights: np.ndarray, pairs, scale_px: float) -> np.ndarray:
    """(..., K) keypoint order that matches each interchangeable pair (i, j) of detections
    (..., K, 2) to the projections (..., K, 2) the cheaper way (weighted Cauchy cost of
    both points; the weights (..., K) travel with their detections): take_along_axis with it
    reorders detections, weights and anything else per detection."""
    count = detected_px.shape[-2]
    order = np.broadcast_to(np.arange(count), detected_px.shape[:-1]).copy()

    def cost(detected, projected, weight):
        squared = ((detected - projected) ** 2).sum(-1)
        return weight * np.log1p(np.nan_to_num(squared, nan=np.inf) / scale_px ** 2)

    for i, j in pairs:
        d_i, d_j = detected_px[..., i, :], detected_px[..., j, :]
        p_i, p_j = projected_px[..., i, :], projected_px[..., j, :]
        w_i, w_j = weights[..., i], weights[..., j]
        direct = cost(d_i, p_i, w_i) + cost(d_j, p_j, w_j)
        crossed = cost(d_j, p_i, w_j) + cost(d_i, p_j, w_i)
        swap = crossed < direct
        order[..., i] = np.where(swap, j, i)
        order[..., j] = np.where(swap, i, j)
    return order


_KINEMATICS: 'weakref.WeakKeyDictionary[RobotModel, KeypointKinematics]' = \
    weakref.WeakKeyDictionary()


def keypoint_kinematics(robot: RobotModel) -> KeypointKinematics:
    """The robot's :class:`KeypointKinematics`, built once per robot (it costs a few ms)."""
    if robot not in _KINEMATICS:
        _KINEMATICS[robot] = KeypointKinematics(robot)
    return _KINEMATICS[robot]


class _Problem(NamedTuple):
    """The data one fit matches, one row per (frame, start)."""

    keypoints_2d_px: np.ndarray       # (M, K, 2)
    weights: np.ndarray               # (M, K, 2): keypoint, depth; 0 where missing
    depths_m: np.ndarray              # (M, K, 1)
    focal: np.ndarray                 # (M, 1, 2) fx, fy pixels
    centre: np.ndarray                # (M, 1, 2) cx, cy pixels
    start_joints: np.ndarray          # (M, n)
    joint_limits: np.ndarray          # (n, 2)


class _State(NamedTuple):
    """A linearised (frame, start) state: unknowns, residuals, IRLS normal equations, cost."""

    joint_angles: np.ndarray          # (M, n)
    rotation: np.ndarray              # (M, 3, 3) R_cam_base
    translation: np.ndarray           # (M, 3) t_cam_base, metres
    residuals: np.ndarray             # (M, K, 3): u, v pixels; scaled depth
    hessian: np.ndarray               # (M, n+6, n+6) J'WJ + prior
    gradient: np.ndarray              # (M, n+6) J'Wr + prior
    cost: np.ndarray                  # (M,)


def _linearise(kinematics: KeypointKinematics, problem: _Problem, config: FitConfig,
               joint_angles: np.ndarray, rotation: np.ndarray,
               translation: np.ndarray) -> _State:
    """Residuals, robust cost and IRLS normal equations at one state, all (frame, start)s."""
    keypoints, axes, origins = kinematics(joint_angles)
    batch, count, n = len(joint_angles), keypoints.shape[1], joint_angles.shape[1]
    rotation_t = rotation.transpose(0, 2, 1)
    points = keypoints @ rotation_t + translation[:, None]                   # camera frame
    depth = points[..., 2:]
    in_front = depth > config.min_depth_m
    inv_depth = 1.0 / np.maximum(depth, config.min_depth_m)
    normalised = points[..., :2] * inv_depth
    depth_scale = config.depth_weight ** 0.5
    depth_term = depth - depth[:, :1] if config.depth_relative_to_first else depth
    residuals = np.concatenate((normalised * problem.focal + problem.centre
                                - problem.keypoints_2d_px,
                                depth_scale * (depth_term - problem.depths_m)), -1)

    # d camera point / d (q, dω, dt), one row per unknown (M, n+6, K, 3): joints, then the
    # left-multiplied camera update X <- exp(dω) X + dt, whose rows are dω_i x X and e_i.
    d_joints = kinematics.jacobian(points, axes @ rotation_t,
                                   origins @ rotation_t + translation[:, None])
    d_rotation = skew(points).transpose(0, 2, 1, 3)
    d_translation = np.broadcast_to(np.eye(3)[None, :, None], (batch, 3, count, 3))
    d_points = np.concatenate((d_joints, d_rotation, d_translation), 1)
    # Through the projection; no depth derivative where the depth is clamped.
    d_pixels = projection_jacobian(d_points, normalised, in_front, problem.focal, inv_depth)
    d_depth = d_points[..., 2:]
    if config.depth_relative_to_first:
        d_depth = d_depth - d_depth[:, :, :1]
    jacobian_t = np.concatenate((d_pixels, depth_scale * d_depth), -1) \
        .reshape(batch, n + 6, 3 * count)                                     # J'

    squared = residuals ** 2
    squared = np.stack((squared[..., 0] + squared[..., 1], squared[..., 2]), -1)
    ratio = squared / config.robust_scale_px ** 2                 # Cauchy: c² log(1 + s/c²)
    joint_offset = joint_angles - problem.start_joints
    cost = config.robust_scale_px ** 2 * (problem.weights * np.log1p(ratio)).sum((1, 2)) \
        + config.joint_prior_weight * (joint_offset ** 2).sum(-1)
    irls = problem.weights / (1.0 + ratio)                         # the loss's slope
    weighted = jacobian_t * irls[..., (0, 0, 1)].reshape(batch, 1, -1)
    hessian = weighted @ jacobian_t.transpose(0, 2, 1)
    hessian[:, range(n), range(n)] += config.joint_prior_weight
    gradient = (weighted @ residuals.reshape(batch, -1, 1))[..., 0]
    gradient[:, :n] += config.joint_prior_weight * joint_offset
    return _State(joint_angles, rotation, translation, residuals, hessian, gradient, cost)


def _step(problem: _Problem, state: _State, damping: np.ndarray, fit_camera: bool = True
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One damped Gauss-Newton step per row -> (step, joint angles, rotation, translation);
    without ``fit_camera`` only the joint block is solved and the camera's step is zero."""
    n = state.joint_angles.shape[1]
    size = n + 6 if fit_camera else n
    # Marquardt: damp each unknown relative to its own curvature (+ a floor, so a frame with
    # no usable keypoint still solves, to a zero step).
    damped = state.hessian[:, :size, :size].copy()
    diagonal = damped[:, range(size), range(size)]
    damped[:, range(size), range(size)] = diagonal * (1.0 + damping) + 1e-9
    # PyTorch's solve_ex flags a singular frame instead of failing the whole batch.
    solved, _ = torch.linalg.solve_ex(torch.from_numpy(damped),
                                      torch.from_numpy(-state.gradient[:, :size]))
    step = np.zeros_like(state.gradient)
    step[:, :size] = np.nan_to_num(solved.numpy(), nan=0.0, posinf=0.0, neginf=0.0)
    update = so3_exp(step[:, n:n + 3])
    lower, upper = problem.joint_limits[:, 0], problem.joint_limits[:, 1]
    return (step, np.clip(state.joint_angles + step[:, :n], lower, upper),
            update @ state.rotation,
            (update @ state.translation[..., None])[..., 0] + step[:, n + 3:])


def _reassigned(problem: _Problem, state: _State, pairs, config: FitConfig
                ) -> tuple[_Problem, bool]:
    """The problem with each row's interchangeable detections matched to the state's
    projections (:func:`interchangeable_order`), and whether any row changed."""
    projected = state.residuals[..., :2] + problem.keypoints_2d_px
    order = interchangeable_order(problem.keypoints_2d_px, projected, problem.weights[..., 0],
                                  pairs, config.robust_scale_px)
    if (order == np.arange(order.shape[-1])).all():
        return problem, False
    take = lambda array: np.take_along_axis(array, order[..., None], 1)  # noqa: E731
    return problem._replace(keypoints_2d_px=take(problem.keypoints_2d_px),
                            weights=take(problem.weights), depths_m=take(problem.depths_m)), True


def _select(take_new: np.ndarray, new: _State, old: _State) -> _State:
    """Per (frame, start): the new state where take_new, else the old one."""
    return _State(*(np.where(take_new.reshape(-1, *([1] * (a.ndim - 1))), a, b)
                    for a, b in zip(new, old)))


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().double().numpy()


def _prepare(robot: RobotModel, keypoints_2d_px, keypoint_weights, intrinsics, start_joints,
             start_T_cam_base, keypoint_depths_m, depth_weights
             ) -> tuple[_Problem, np.ndarray, np.ndarray]:
    """Rows of (frame, start); anything not finite gets weight 0, or a dummy start."""
    starts, n = start_joints.shape[1:]

    def per_start(tensor: torch.Tensor) -> np.ndarray:  # every start sees its frame's data
        return np.repeat(_numpy(tensor), starts, axis=0)

    observed = per_start(keypoints_2d_px)
    usable = np.isfinite(observed).all(-1)
    weights = np.where(usable, np.clip(per_start(keypoint_weights), 0.0, 1.0), 0.0)
    if keypoint_depths_m is None:
        depths, weights_depth = np.zeros_like(weights), np.zeros_like(weights)
    else:
        depths = per_start(keypoint_depths_m)
        weights_depth = per_start(keypoint_weights if depth_weights is None else depth_weights)
        weights_depth = np.where(np.isfinite(depths), np.clip(weights_depth, 0.0, 1.0), 0.0)
    intrinsics = per_start(intrinsics)

    # A start that is not finite (a failed PnP, say) is refined from a dummy and never wins.
    joints = _numpy(start_joints).reshape(-1, n)
    T_start = _numpy(start_T_cam_base).reshape(-1, 4, 4)
    valid = np.isfinite(joints).all(-1) & np.isfinite(T_start).all((1, 2))
    limits = _numpy(robot.joint_limits)
    joints = np.clip(np.where(valid[:, None], joints, limits.mean(-1)), limits[:, 0],
                     limits[:, 1])
    dummy = np.eye(4)
    dummy[2, 3] = 1.0
    T_start = np.where(valid[:, None, None], T_start, dummy)
    problem = _Problem(np.where(usable[..., None], observed, 0.0),
                       np.stack((weights, weights_depth), -1),
                       np.nan_to_num(depths)[..., None], intrinsics[:, None, (0, 1), (0, 1)],
                       intrinsics[:, None, (0, 1), (2, 2)], joints, limits)
    return problem, T_start, valid


def fit_robot_pose(robot: RobotModel, keypoints_2d_px: torch.Tensor,
                   keypoint_weights: torch.Tensor, intrinsics: torch.Tensor,
                   start_joints: torch.Tensor, start_T_cam_base: torch.Tensor,
                   config: FitConfig = FitConfig(),
                   keypoint_depths_m: Optional[torch.Tensor] = None,
                   depth_weights: Optional[torch.Tensor] = None,
                   view_log_probs: Optional[tuple[torch.Tensor, torch.Tensor]] = None
                   ) -> FitResult:
    """Fit joint angles and T_cam_base to 2D keypoints from S starts per frame; keep the best.

    keypoints_2d_px (B, K, 2); keypoint_weights (B, K) in [0, 1] (network confidence, 0 =
    missing; keypoints that are not finite count as missing); intrinsics (B, 3, 3);
    start_joints (B, S, n) radians and start_T_cam_base (B, S, 4, 4): S starts per frame (e.g.
    the 2D and the 3D branch's guesses, or a PnP camera), all refined in one batch.
    keypoint_depths_m (B, K): optional camera-frame z of each keypoint (3D branch), weighted by
    depth_weights (B, K) (default: keypoint_weights). view_log_probs: the view head's
    log-probabilities (geometry/view.py split_view_logits); with ``config.view_weight`` each final
    candidate's cost gains view_weight times minus the log-likelihood of its camera, and the
    lowest total wins (the returned cost includes it). Outputs are on keypoints_2d_px's device,
    in its dtype.
    """
    kinematics = keypoint_kinematics(robot)
    batch, starts = start_joints.shape[:2]
    problem, T_start, valid = _prepare(
        robot, keypoints_2d_px, keypoint_weights, intrinsics, start_joints, start_T_cam_base,
        keypoint_depths_m, depth_weights)
    state = _linearise(kinematics, problem, config, problem.start_joints, T_start[:, :3, :3],
                       T_start[:, :3, 3])
    pairs = robot.description.interchangeable_keypoints if config.reassign_every > 0 else ()
    damping = np.full((len(valid), 1), config.damping)
    settled = ~np.isfinite(state.cost)
    for iteration in range(config.iterations):
        if pairs and iteration % config.reassign_every == 0:
            problem, changed = _reassigned(problem, state, pairs, config)
            if changed:
                state = _linearise(kinematics, problem, config, state.joint_angles,
                                   state.rotation, state.translation)
        step, *candidate = _step(problem, state, damping, config.fit_camera)
        candidate = _linearise(kinematics, problem, config, *candidate)
        # A settled start stays where it settled, so its result does not depend on which
        # other starts (or frames) share the batch.
        accept = (candidate.cost < state.cost) & ~settled
        gain = np.where(accept, state.cost - candidate.cost, np.inf)
        state = _select(accept, candidate, state)
        damping = np.clip(np.where(accept[:, None], damping * 0.3, damping * 10.0), 1e-9, 1e9)
        if config.cost_tolerance > 0:
            settled |= gain <= config.cost_tolerance * state.cost
        if settled.all() or np.abs(step[~settled]).max() < config.step_tolerance:
            break

    cost = state.cost
    if view_log_probs is not None and config.view_weight > 0:
        T_all = np.tile(np.eye(4), (len(cost), 1, 1))
        T_all[:, :3, :3], T_all[:, :3, 3] = state.rotation, state.translation
        sign = robot.first_joint_turns_base
        first_joint = None if sign is None else torch.from_numpy(
            sign * state.joint_angles[:, 0].reshape(batch, starts))
        log_likelihood = view_log_likelihood(
            tuple(p.detach().cpu().double() for p in view_log_probs),
            torch.from_numpy(T_all).reshape(batch, starts, 4, 4), first_joint)
        cost = cost - config.view_weight * log_likelihood.numpy().reshape(-1)
    cost = np.where(valid, cost, np.inf).reshape(batch, starts)
    best = cost.argmin(1)
    row = np.arange(batch) * starts + best
    T_cam_base = np.tile(np.eye(4), (batch, 1, 1))
    T_cam_base[:, :3, :3], T_cam_base[:, :3, 3] = state.rotation[row], state.translation[row]

    def tensor(array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(array).to(keypoints_2d_px.device, keypoints_2d_px.dtype)

    return FitResult(joint_angles=tensor(state.joint_angles[row]), T_cam_base=tensor(T_cam_base),
                     residual_px=tensor(np.linalg.norm(state.residuals[row, :, :2], axis=-1)),
                     cost=tensor(cost[np.arange(batch), best]),
                     start_index=torch.from_numpy(best).to(keypoints_2d_px.device))


def camera_from_joints_pnp(robot: RobotModel, joint_angles: torch.Tensor,
                           keypoints_2d_px: torch.Tensor, keypoint_weights: torch.Tensor,
                           intrinsics: torch.Tensor, min_weight: float = 0.5,
                           refine: bool = True) -> torch.Tensor:
    """T_cam_base (B, 4, 4) by PnP of the FK keypoints of joint_angles (B, n) on the 2D ones.

    SQPnP, then (``refine``) Levenberg-Marquardt refinement, on the keypoints whose weight
    (B, K) exceeds min_weight. A frame with fewer than 4 such points, a failed solve, or a
    solution that puts a point behind the camera gives NaNs (the caller falls back to another
    start).
    """
    object_points = keypoint_kinematics(robot)(_numpy(joint_angles))[0]
    image_points = _numpy(keypoints_2d_px)
    usable = (_numpy(keypoint_weights) > min_weight) & np.isfinite(image_points).all(-1)
    camera_matrices = _numpy(intrinsics)
    result = np.full((len(object_points), 4, 4), np.nan)
    for frame in range(len(object_points)):  # OpenCV solves one frame at a time
        chosen = usable[frame]
        if chosen.sum() < 4:
            continue
        obj, img = object_points[frame, chosen], image_points[frame, chosen]
        camera = camera_matrices[frame]
        try:
            ok, rvec, tvec = cv2.solvePnP(obj, img, camera, None, flags=cv2.SOLVEPNP_SQPNP)
            if not ok:
                continue
            if refine:
                rvec, tvec = cv2.solvePnPRefineLM(obj, img, camera, None, rvec, tvec)
        except cv2.error:
            continue
        rotation = cv2.Rodrigues(rvec)[0]
        if not ((obj @ rotation.T + tvec.reshape(1, 3))[:, 2] > 0).all():
            continue
        result[frame] = np.eye(4)
        result[frame, :3, :3], result[frame, :3, 3] = rotation, tvec.ravel()
    return torch.from_numpy(result).to(keypoints_2d_px.device, keypoints_2d_px.dtype)
