"""``robotag-calibrate``: markerless hand-eye calibration from a recording to a .calib file.

``--images BAG``: a rosbag2 of camera images, their CameraInfo and the robot's /joint_states,
estimated frame by frame here as the node would (robotag_ros.calibration.recording).
``--bag BAG``: a rosbag2 of the estimator node's outputs; ``--estimates``: a JSON/CSV list.
The per-frame camera<->base estimates are aggregated robustly (eye-on-base, or eye-in-hand with
the measured joints and the robot's forward kinematics) and checked for a camera that moved; with
``--images`` the result is then one camera fitted to every kept frame's detected keypoints at
once (their measured-joint FK keypoints as one 3D point set: joint_camera_fit.py), written
as easy_handeye2's ``.calib`` YAML atomically (nothing is written on failure) and summarised in a
table. The live (ROS) variant lives in ``robotag_ros.ros``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from scipy.spatial.transform import Rotation

from robotag_ros.atomic_io import atomic_write_text
from robotag_ros.calibration.aggregate import AggregateResult
from robotag_ros.calibration.calib_file import (
    DEFAULT_CALIBRATIONS_DIRECTORY, HandEyeCalibration, write_calib,
)
from robotag_ros.calibration.estimates_io import (
    EstimateSeries, load_estimates_file, read_estimates_bag,
)
from robotag_ros.calibration.hand_eye import CALIBRATION_TYPES, EYE_IN_HAND, EYE_ON_BASE
from robotag_ros.calibration.live import CalibrationSettings, calibrate_series
from robotag_ros.calibration.recording import (
    DEFAULT_JOINT_STATES_TOPIC, estimate_recording_file,
)
from robotag_ros.calibration.synthetic import transform_error


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='robotag-calibrate', description=__doc__.split('\n\n')[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('--images', type=Path,
                        help='rosbag2 folder (sqlite3 or MCAP) of camera images (Image or '
                             'CompressedImage), their CameraInfo and the robot\'s joint states')
    source.add_argument('--bag', type=Path, help='rosbag2 folder (sqlite3 or MCAP) of the node')
    source.add_argument('--estimates', type=Path,
                        help='JSON or CSV of per-frame T_cam_base estimates')
    parser.add_argument('--type', dest='calibration_type', choices=CALIBRATION_TYPES,
                        default=EYE_ON_BASE)
    parser.add_argument('--name', default='robotag', help='calibration name (file stem)')
    parser.add_argument('--output', type=Path,
                        help='.calib file to write (default: easy_handeye2\'s folder, '
                             f'{DEFAULT_CALIBRATIONS_DIRECTORY}/<name>.calib)')
    parser.add_argument('--summary-json', type=Path, help='also write the summary as JSON')
    parser.add_argument('--base-frame', default='panda_link0')
    parser.add_argument('--camera-frame', default=None,
                        help='camera optical frame (required when reading /tf); default for the '
                             '.calib: camera_color_optical_frame')
    parser.add_argument('--effector-frame', default='panda_hand',
                        help='robot effector link (eye-in-hand: the link the camera is on)')
    parser.add_argument('--pose-topic', default=None,
                        help='PoseStamped or TFMessage topic (default: *camera_pose, else /tf)')
    parser.add_argument('--diagnostics-topic', default='/diagnostics')
    parser.add_argument('--joint-states-topic', default=None,
                        help='JointState topic (default: /joint_states; --images: found by type '
                             'when it is not there and the bag has only one)')
    parser.add_argument('--image-topic', default=None,
                        help='--images: Image or CompressedImage topic (default: the only one)')
    parser.add_argument('--camera-info-topic', default=None,
                        help='--images: CameraInfo topic (default: <image namespace>/camera_info, '
                             'else the only one)')
    parser.add_argument('--model', default=None,
                        help='--images: model artifact (default: the bundled panda_default)')
    parser.add_argument('--backend', default='auto', help='--images: estimator backend')
    parser.add_argument('--device', default='cpu', help='--images: cpu or cuda')
    parser.add_argument('--estimator-factory', default='',
                        help="--images: 'module:callable' building the estimator, as the node's "
                             "estimator_factory parameter ('' = the project's Estimator)")
    parser.add_argument('--camera-motion-threshold-mm', type=float, default=20.0,
                        help='report a moved camera when the per-frame calibrations (the robot '
                             'as seen from the camera) jump or drift by more')
    parser.add_argument('--camera-motion-threshold-deg', type=float, default=2.0)
    parser.add_argument('--no-camera-motion-check', action='store_true',
                        help='average every frame even if the camera seems to have moved')
    parser.add_argument('--no-joint-fit', action='store_true',
                        help='--images: calibrate with the robust average of the per-frame '
                             'cameras instead of one camera fitted to all frames\' keypoints')
    parser.add_argument('--joint-fit-robust-scale-px', type=float, default=4.0,
                        help='Cauchy scale of the reprojection error in that fit (pixels)')
    parser.add_argument('--robot', default='panda', help='robot name or YAML (eye-in-hand FK)')
    parser.add_argument('--min-consistency', type=float, default=0.0,
                        help='drop frames whose consistency score is below this')
    parser.add_argument('--no-outlier-rejection', action='store_true')
    parser.add_argument('--mad-k', type=float, default=3.0,
                        help='outlier threshold in robust standard deviations (median + k*MAD)')
    parser.add_argument('--stamp-tolerance-s', type=float, default=0.05,
                        help='max stamp difference when matching diagnostics/joint states')
    parser.add_argument('--accept-damaged-bag', action='store_true',
                        help='calibrate from the messages a damaged bag still gives (it reads '
                             'short of its metadata\'s counts); without it such a bag is refused '
                             'and nothing is written')
    parser.add_argument('--publish-static', action='store_true',
                        help='after writing, publish the result on /tf_static (transient '
                             'local, as easy_handeye2 does) until Ctrl-C; needs rclpy')
    return parser


def _pose_fields(prefix: str, T) -> dict:
    """A transform as flat fields: ``<prefix>_x_m`` .. ``_z_m``, ``_qx`` .. ``_qw``."""
    qx, qy, qz, qw = Rotation.from_matrix(T[:3, :3]).as_quat()
    return {f'{prefix}_x_m': float(T[0, 3]), f'{prefix}_y_m': float(T[1, 3]),
            f'{prefix}_z_m': float(T[2, 3]), f'{prefix}_qx': float(qx),
            f'{prefix}_qy': float(qy), f'{prefix}_qz': float(qz), f'{prefix}_qw': float(qw)}


def summary_dict(result: AggregateResult, calibration: HandEyeCalibration) -> dict:
    """The numbers the table prints: transform, spread and frame counts (units in the keys)."""
    T = calibration.T_cam_reference
    T_inv = calibration.T_reference_cam
    summary = {
        'calibration_type': calibration.calibration_type,
        **_pose_fields('T_cam_reference', T),
        'camera_in_reference_x_m': float(T_inv[0, 3]),
        'camera_in_reference_y_m': float(T_inv[1, 3]),
        'camera_in_reference_z_m': float(T_inv[2, 3]),
    }
    summary.update(result.summary())
    fit = result.extra.get('joint_fit')
    summary['calibration_method'] = 'joint_fit' if fit is not None else 'per_frame_aggregate'
    if fit is not None:
        summary.update(fit.summary())
        # how far the per-frame average is from the result: its bias, where it has one
        difference_mm, difference_deg = transform_error(result.T, T)
        summary['per_frame_aggregate_difference_mm'] = difference_mm
        summary['per_frame_aggregate_difference_deg'] = difference_deg
        summary.update(_pose_fields('per_frame_aggregate_T_cam_reference', result.T))
    if 'joint_fit_skipped' in result.extra:
        summary['joint_fit_skipped'] = result.extra['joint_fit_skipped']
    return summary


def _load(args, joint_names) -> EstimateSeries:
    if args.estimates is not None:
        return load_estimates_file(args.estimates)
    return read_estimates_bag(
        args.bag, base_frame=args.base_frame, camera_frame=args.camera_frame,
        pose_topic=args.pose_topic, diagnostics_topic=args.diagnostics_topic,
        joint_states_topic=(args.joint_states_topic or DEFAULT_JOINT_STATES_TOPIC
                            if joint_names else None),
        joint_names=joint_names, tolerance_s=args.stamp_tolerance_s,
        allow_damaged=args.accept_damaged_bag)


def _estimate_images(args) -> tuple[EstimateSeries, dict, object]:
    """--images: the series of a recording estimated here, what to add to the summary, and the
    robot model (eye-in-hand FK)."""
    recording, estimator = estimate_recording_file(
        args.images, args.model, args.estimator_factory, args.backend, args.device,
        args.image_topic, args.camera_info_topic, args.joint_states_topic,
        args.stamp_tolerance_s)
    topics = recording.plan.topics
    extra = {'image_topic': topics.image, 'camera_info_topic': topics.camera_info,
             'joint_states_topic': topics.joint_states, **recording.counts.summary()}
    return recording.series, extra, getattr(estimator, 'robot', None)


def run(args) -> dict:
    """Calibrate as the parsed arguments say; returns the summary dict."""
    from robotag_ros.metrics.report import format_table

    robot, joint_names, extra = None, None, {}
    if args.images is not None:
        series, extra, robot = _estimate_images(args)
    if args.calibration_type == EYE_IN_HAND and robot is None:
        from robotag_ros.robot import load_robot
        robot = load_robot(args.robot)
        joint_names = list(robot.joint_names)
    if args.images is None:
        series = _load(args, joint_names)
    for problem in series.read_problems:   # only with --accept-damaged-bag; else refused
        print(f'robotag-calibrate: WARNING: {problem}; calibrating from what was read '
              '(--accept-damaged-bag)', file=sys.stderr)
    settings = CalibrationSettings(
        name=args.name, calibration_type=args.calibration_type, base_frame=args.base_frame,
        camera_frame=args.camera_frame or 'camera_color_optical_frame',
        effector_frame=args.effector_frame, min_consistency=args.min_consistency,
        reject_outliers=not args.no_outlier_rejection, mad_k=args.mad_k,
        check_camera_motion=not args.no_camera_motion_check,
        camera_motion_threshold_mm=args.camera_motion_threshold_mm,
        camera_motion_threshold_deg=args.camera_motion_threshold_deg,
        joint_camera_fit=not args.no_joint_fit,
        joint_fit_robust_scale_px=args.joint_fit_robust_scale_px)
    result, calibration = calibrate_series(series, settings, robot)
    output = args.output or DEFAULT_CALIBRATIONS_DIRECTORY / f'{args.name}.calib'
    write_calib(output, calibration)
    summary = summary_dict(result, calibration)
    summary['output'] = str(output)
    summary.update(extra)
    motion = result.extra.get('camera_motion')
    if motion is not None:
        summary.update(motion.summary())
    if series.read_problems:
        summary['input_damaged'] = '; '.join(series.read_problems)
    if args.summary_json:
        atomic_write_text(args.summary_json, json.dumps(summary, indent=2))
    print(format_table(summary, title=f'robotag-calibrate: {args.calibration_type}'))
    print(f'spread over {result.frames_used} of {result.frames_total} frames: '
          f'{result.translation_spread_mm:.1f} mm / {result.rotation_spread_deg:.2f} deg '
          f'(RMS about their average); written to {output}')
    fit = result.extra.get('joint_fit')
    if fit is not None:
        print(f'one camera fitted to {fit.points_used} keypoints of {fit.frames_used} frames: '
              f'{fit.rms_px:.2f} px RMS; {summary["per_frame_aggregate_difference_mm"]:.1f} mm '
              f'/ {summary["per_frame_aggregate_difference_deg"]:.2f} deg from the per-frame '
              'average')
    if 'joint_fit_skipped' in result.extra:
        print(f'robotag-calibrate: WARNING: the per-frame average is the result: '
              f'{result.extra["joint_fit_skipped"]}', file=sys.stderr)
    if motion is not None and motion.moved:
        print(f'robotag-calibrate: WARNING: {motion.warning()}', file=sys.stderr)
    return summary


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        summary = run(args)
    except (FileNotFoundError, ValueError, RuntimeError, KeyError) as err:
        hint = (' (nothing written; --accept-damaged-bag calibrates from the messages it still '
                'gives)' if 'is damaged' in str(err) and args.bag is not None else '')
        print(f'robotag-calibrate: error: {err}{hint}', file=sys.stderr)
        return 2
    if args.publish_static:
        # The ROS layer's publisher takes over this process (the calibration core never imports
        # rclpy, and the ROS layer imports the core, not the other way round).
        sys.stdout.flush()
        os.execv(sys.executable, [sys.executable, '-m', 'robotag_ros.ros.static_tf',
                                  summary['output']])
    return 0


if __name__ == '__main__':
    sys.exit(main())
