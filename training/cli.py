"""Console entry points: robotag-train, robotag-eval, robotag-finetune (thin shells)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _input_errors() -> tuple[type[BaseException], ...]:
    """What bad input raises (missing or broken files, foreign artifacts, bad configs): the
    CLIs print one line naming the file and the problem and exit 2, never a traceback."""
    import yaml

    from robotag_ros.data.bags.bag_images import BagReadError
    from robotag_ros.model.artifact import ArtifactError
    from robotag_ros.inference.backends import BackendUnavailable
    from robotag_ros.training.checkpoint import CheckpointError
    return (OSError, ValueError, KeyError, yaml.YAMLError, ArtifactError, BagReadError,
            BackendUnavailable, CheckpointError)


def error_line(error: BaseException) -> str:
    """An error's text on one line (YAML parser errors span several; KeyError adds quotes)."""
    text = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
    return ' '.join(str(text).split()) or type(error).__name__


def existing_run_outputs(config) -> list[Path]:
    """The files of an earlier run that a new run in ``config.run_dir`` would overwrite: its
    checkpoint and its artifact (``artifact_out``, default ``run_dir/<robot>_tag``)."""
    from robotag_ros.model.artifact import artifact_paths
    from robotag_ros.robot.description import load_description
    from robotag_ros.training.trainer import LAST_CHECKPOINT
    run_dir = Path(config.run_dir)
    artifact = config.artifact_out or run_dir / f'{load_description(config.robot).name}_tag'
    candidates = [run_dir / LAST_CHECKPOINT, *artifact_paths(artifact)]
    return [path for path in candidates if path.exists()]


def train_main(argv: list[str] | None = None) -> int:
    """robotag-train --config FILE [key.sub=value ...] [--resume | --force]; runs under torchrun
    too."""
    parser = argparse.ArgumentParser(
        prog='robotag-train', description='Train the TAG model (stage 1 or 2, set in the config). '
        'Multi-GPU: torchrun --nproc_per_node=N $(which robotag-train) --config FILE')
    parser.add_argument('--config', required=True, help='experiment YAML (config/train/*.yaml)')
    parser.add_argument('--resume', action='store_true',
                        help='continue from run_dir/checkpoint_last.pt if it exists')
    parser.add_argument('--force', action='store_true',
                        help="start afresh in a run_dir that holds a run's checkpoint or model, "
                             'overwriting them')
    parser.add_argument('overrides', nargs='*', help='key.sub=value, e.g. optim.lr=1e-4')
    args = parser.parse_intermixed_args(argv)   # --force/--resume may come after overrides
    try:
        from robotag_ros.training.config import load_config
        from robotag_ros.training.trainer import Trainer
        config = load_config(args.config, args.overrides)
        existing = existing_run_outputs(config)
        if existing and not (args.resume or args.force):
            raise FileExistsError(
                f'{config.run_dir} holds an earlier run ({", ".join(p.name for p in existing)}): '
                'pass --resume to continue it or --force to start afresh and overwrite it')
        trainer = Trainer(config, resume=args.resume)
        try:
            trainer.train()
        finally:
            trainer.close()
    except _input_errors() as error:
        print(f'robotag-train: error: {error_line(error)}', file=sys.stderr)
        return 2
    return 0


def result_keys(folders: list[str]) -> list[str]:
    """One key per --data folder: its name, or the path as given where two folders share a
    name (results never overwrite each other); a folder given twice is refused."""
    resolved = [Path(folder).resolve() for folder in folders]
    repeated = sorted({str(f) for f, r in zip(folders, resolved) if resolved.count(r) > 1})
    if repeated:
        raise ValueError(f'--data {", ".join(repeated)} given more than once')
    names = [Path(folder).resolve().name for folder in folders]
    return [name if names.count(name) == 1 else str(folder)
            for name, folder in zip(names, folders)]


def eval_main(argv: list[str] | None = None) -> int:
    """robotag-eval --model ARTIFACT --data DIR [--data DIR2 ...] [--json OUT]."""
    parser = argparse.ArgumentParser(prog='robotag-eval', description=eval_main.__doc__)
    parser.add_argument('--model', required=True, help='artifact (models/panda_default)')
    parser.add_argument('--data', required=True, action='append',
                        help='DREAM-format folder (repeat for several sets)')
    parser.add_argument('--json', help='write the metrics here (one entry per data set), only '
                                       'when every set was evaluated')
    parser.add_argument('--device', default='auto')
    parser.add_argument('--batch-size', type=int, default=16)
    parser.add_argument('--max-frames', type=int, default=0, help='frames per set (0 = all)')
    args = parser.parse_args(argv)
    try:
        # Checked before the model loads: a bad count must not evaluate nothing and write NaN.
        if args.batch_size < 1:
            raise ValueError(f'--batch-size must be at least 1, got {args.batch_size}')
        if args.max_frames < 0:
            raise ValueError(f'--max-frames must be 0 (all) or more, got {args.max_frames}')
        from robotag_ros.atomic_io import atomic_write_text
        from robotag_ros.inference.estimator import Estimator
        from robotag_ros.training.distributed import resolve_device
        from robotag_ros.training.evaluate import evaluate_estimator, open_eval_folder
        keys = result_keys(args.data)
        estimator = Estimator.from_artifact(args.model, backend='torch',
                                            device=str(resolve_device(args.device)))
        # Every folder is opened (and refused if unusable) before the first is evaluated.
        datasets = [open_eval_folder(folder, estimator.robot) for folder in args.data]
        results = {key: evaluate_estimator(estimator, folder, batch_size=args.batch_size,
                                           max_frames=args.max_frames, print_table=True,
                                           dataset=dataset)
                   for key, folder, dataset in zip(keys, args.data, datasets)}
        if args.json:
            payload = results[keys[0]] if len(results) == 1 else results
            atomic_write_text(args.json, json.dumps(payload, indent=2))
    except _input_errors() as error:
        print(f'robotag-eval: error: {error_line(error)}', file=sys.stderr)
        return 2
    return 0


def finetune_main(argv: list[str] | None = None) -> int:
    """robotag-finetune: stage-2 (alignment-only) fine-tuning of an artifact on a rosbag2's
    images (--bag), or periodically on the estimator node's frame buffer (--online)."""
    parser = argparse.ArgumentParser(
        prog='robotag-finetune', description=finetune_main.__doc__,
        epilog='From a bag: robotag-finetune --model models/panda_default --bag rec.bag '
               '--topic /camera/color/image_raw --out models/panda_site optim.epochs=2. '
               'Online: robotag-finetune --online BUFFER_DIR --models-dir MODELS_DIR '
               '(the node runs with record_buffer_dir and models_dir set).')
    parser.add_argument('--model', help='artifact to start from (online: seeds an empty store)')
    parser.add_argument('--bag', action='append', default=[], help='rosbag2 (repeatable)')
    parser.add_argument('--topic', help='sensor_msgs/Image (or CompressedImage) topic in the bag')
    parser.add_argument('--camera-info-topic', default=None)
    parser.add_argument('--out', help='the new artifact (path prefix)')
    parser.add_argument('--force', action='store_true', help='overwrite an existing --out')
    parser.add_argument('--config', default=None, help='optional experiment YAML')
    labelling = parser.add_argument_group(
        'self-labelling mode (--self-label BAG: a recording of images, CameraInfo and '
        '/joint_states; the topic options of robotag-calibrate --images apply)')
    labelling.add_argument('--self-label', metavar='BAG', type=Path, nargs='+',
                           help='calibrate from the recording (or --calib), label every frame '
                                'by forward kinematics, fine-tune on the frames the network '
                                'agrees with, judge the candidate with the swap gate; several '
                                'recordings (the camera moved between them) are each '
                                'calibrated from their own frames and learnt together')
    labelling.add_argument('--calib', help='label with this .calib instead of calibrating')
    labelling.add_argument('--type', dest='calibration_type', default='eye_on_base',
                           choices=('eye_on_base', 'eye_in_hand'))
    labelling.add_argument('--effector-frame', default='panda_hand')
    labelling.add_argument('--image-topic', default=None)
    labelling.add_argument('--joint-states-topic', default=None)
    labelling.add_argument('--holdout-fraction', type=float, default=0.2,
                           help="the recording's last part (this share of the labelled frames) "
                                'is held out to judge the candidate')
    labelling.add_argument('--holdout-gap', type=int, default=15,
                           help='frames between the training and held-out parts, used by '
                                'neither (neighbouring frames look alike)')
    labelling.add_argument('--replay-frames', type=int, default=300,
                           help='rendered default-DR frames mixed into the training set, so '
                                'that the model does not learn one camera by heart (0: none)')
    labelling.add_argument('--replay-matched-camera', action='store_true',
                           help="render the replayed frames through the recording's camera "
                                '(its K, distance and elevation; every side) instead of the '
                                "default DR's")
    labelling.add_argument('--generic-check-frames', type=int, default=40,
                           help='rendered frames on which the candidate may not get worse '
                                '(0: no such check)')
    labelling.add_argument('--backend', default='auto', help='estimator backend')
    labelling.add_argument('--report-json', type=Path, help='also write the report as JSON')
    online = parser.add_argument_group('online mode')
    online.add_argument('--online', metavar='BUFFER_DIR',
                        help="the node's record_buffer_dir: fine-tune on it periodically")
    online.add_argument('--models-dir', help="the node's models_dir (model store; "
                        '--self-label: the accepted candidate is put there for the node)')
    online.add_argument('--interval-s', type=float, default=300.0,
                        help='seconds between checks of the buffer')
    online.add_argument('--min-new-frames', type=int, default=50,
                        help='new buffered frames needed before another round')
    online.add_argument('--rounds', type=int, default=0, help='stop after N rounds (0 = never)')
    online.add_argument('--min-train-frames', type=int, default=16,
                        help='training (not held-out) frames needed for a round')
    parser.add_argument('overrides', nargs='*', help='key.sub=value, e.g. optim.epochs=2')
    args = parser.parse_args(argv)

    from robotag_ros.data.bags.bag_images import BagReadError
    from robotag_ros.model.artifact import ArtifactError
    from robotag_ros.training.checkpoint import CheckpointError
    try:
        if args.online:
            return _finetune_online(args, parser)
        if args.self_label:
            return _finetune_self_label(args, parser)
        if not (args.model and args.bag and args.topic and args.out):
            parser.error('--model, --bag, --topic and --out are required (or use --online)')
        from robotag_ros.training.finetune import check_output, finetune_config, run_finetune
        check_output(args.model, args.out, args.force)
        config = finetune_config(args.model, args.out, bags=args.bag, image_topic=args.topic,
                                 camera_info_topic=args.camera_info_topic,
                                 config_path=args.config, overrides=args.overrides)
        report = run_finetune(config)
    except (FileNotFoundError, FileExistsError, ValueError, KeyError, BagReadError,
            ArtifactError, CheckpointError) as error:
        print(f'robotag-finetune: error: {error}', file=sys.stderr)
        return 2
    print(f"[finetune] wrote {report['artifact']} ({report['steps']} steps, "
          f"{report['frames_used']} frames); TensorBoard: {report['run_dir']}/tensorboard")
    return 0


def _finetune_self_label(args, parser) -> int:
    from robotag_ros.atomic_io import atomic_write_json
    from robotag_ros.bundled import default_model_path
    from robotag_ros.calibration.live import CalibrationSettings
    from robotag_ros.metrics.report import format_table
    from robotag_ros.training.finetune import check_output
    from robotag_ros.training.self_label import SelfLabelOptions, run_self_label

    if not (args.out or args.models_dir):
        parser.error('--self-label needs --out (or --models-dir)')
    model = args.model or str(default_model_path())
    if args.out:
        check_output(model, args.out, args.force)
    options = SelfLabelOptions(
        calib=args.calib, backend=args.backend, holdout_fraction=args.holdout_fraction,
        holdout_gap_frames=args.holdout_gap, replay_frames=max(0, args.replay_frames),
        replay_matches_camera=args.replay_matched_camera,
        generic_check_frames=max(0, args.generic_check_frames),
        image_topic=args.image_topic, camera_info_topic=args.camera_info_topic,
        joint_states_topic=args.joint_states_topic,
        calibration=CalibrationSettings(calibration_type=args.calibration_type,
                                        effector_frame=args.effector_frame))
    report = run_self_label(args.self_label, model, args.out, options, args.overrides,
                            args.config, args.models_dir)
    if args.report_json:
        atomic_write_json(args.report_json, report, indent=2)
    print(format_table(report, title='robotag-finetune --self-label'))
    verdict = 'accepted' if report['accepted'] else 'rejected'
    print(f"[finetune] wrote {report['artifact']}: {verdict} (held-out gate score "
          f"{report['holdout_gate_score_after']:.3f} vs {report['holdout_gate_score_before']:.3f}"
          f", label error {report['holdout_label_error_px_after']:.1f} vs "
          f"{report['holdout_label_error_px_before']:.1f} px)")
    return 0


def _finetune_online(args, parser) -> int:
    from robotag_ros.finetune.hooks import serving_model_path
    from robotag_ros.training.online import run_online
    if not args.models_dir:
        parser.error('--online needs --models-dir')
    serving_model_path(args.models_dir, args.model or '')
    rounds = run_online(args.online, args.models_dir, args.overrides, args.interval_s,
                        args.min_new_frames, args.min_train_frames, max_rounds=args.rounds,
                        config_path=args.config)
    print(f'[online] {rounds} rounds')
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m robotag_ros.training.cli {train,eval,finetune} ...` (train if omitted)."""
    argv = sys.argv[1:] if argv is None else argv
    commands = {'train': train_main, 'eval': eval_main, 'finetune': finetune_main}
    if argv and argv[0] in commands:
        return commands[argv[0]](argv[1:])
    return train_main(argv)


if __name__ == '__main__':
    sys.exit(main())
