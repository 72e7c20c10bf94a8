"""Console entry points: robotag-train, robotag-eval, robotag-finetune (thin shells)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def train_main(argv: list[str] | None = None) -> int:
    """robotag-train --config FILE [key.sub=value ...] [--resume]; runs under torchrun too."""
    from robotag_ros.training.config import load_config
    from robotag_ros.training.trainer import Trainer

    parser = argparse.ArgumentParser(
        prog='robotag-train', description='Train the TAG model (stage 1 or 2, set in the config). '
        'Multi-GPU: torchrun --nproc_per_node=N $(which robotag-train) --config FILE')
    parser.add_argument('--config', required=True, help='experiment YAML (config/train/*.yaml)')
    parser.add_argument('--resume', action='store_true',
                        help='continue from run_dir/checkpoint_last.pt if it exists')
    parser.add_argument('overrides', nargs='*', help='key.sub=value, e.g. optim.lr=1e-4')
    args = parser.parse_args(argv)
    config = load_config(args.config, args.overrides)
    trainer = Trainer(config, resume=args.resume)
    try:
        trainer.train()
    finally:
        trainer.close()
    return 0


def eval_main(argv: list[str] | None = None) -> int:
    """robotag-eval --model ARTIFACT --data DIR [--data DIR2 ...] [--json OUT]."""
    from robotag_ros.training.evaluate import evaluate_artifact

    parser = argparse.ArgumentParser(prog='robotag-eval', description=eval_main.__doc__)
    parser.add_argument('--model', required=True, help='artifact (models/panda_default)')
    parser.add_argument('--data', required=True, action='append',
                        help='DREAM-format folder (repeat for several sets)')
    parser.add_argument('--json', help='write the metrics here (one entry per data set)')
    parser.add_argument('--device', default='auto')
    parser.add_argument('--batch-size', type=int, default=16)
    parser.add_argument('--max-frames', type=int, default=0)
    args = parser.parse_args(argv)
    results = {}
    for folder in args.data:
        results[Path(folder).name] = evaluate_artifact(
            args.model, folder, device=args.device, batch_size=args.batch_size,
            max_frames=args.max_frames, print_table=True)
    if args.json:
        payload = results[Path(args.data[0]).name] if len(results) == 1 else results
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(payload, indent=2))
    return 0


def finetune_main(argv: list[str] | None = None) -> int:
    """robotag-finetune: stage-2 (alignment-only) fine-tuning of an artifact on a rosbag2."""
    from robotag_ros.training.config import load_config
    from robotag_ros.training.trainer import Trainer

    parser = argparse.ArgumentParser(prog='robotag-finetune', description=finetune_main.__doc__)
    parser.add_argument('--model', required=True, help='artifact to start from')
    parser.add_argument('--bag', required=True, action='append', help='rosbag2 (repeatable)')
    parser.add_argument('--topic', required=True, help='sensor_msgs/Image topic in the bag')
    parser.add_argument('--camera-info-topic', default=None)
    parser.add_argument('--out', required=True, help='the new artifact (path prefix)')
    parser.add_argument('--config', default=None, help='optional experiment YAML')
    parser.add_argument('overrides', nargs='*', help='key.sub=value, e.g. optim.epochs=2')
    args = parser.parse_args(argv)

    from robotag_ros.inference.artifact import load_sidecar
    sidecar = load_sidecar(args.model)
    base = [f'stage=2', f'robot={sidecar.robot}', f'init_from={args.model}',
            f'artifact_out={args.out}', f'data.bags={json.dumps(args.bag)}',
            f'data.image_topic={args.topic}',
            f'data.image_size={json.dumps(list(sidecar.input_size))}',
            f'run_dir={Path(args.out).parent / (Path(args.out).name + "_run")}']
    if args.camera_info_topic:
        base.append(f'data.camera_info_topic={args.camera_info_topic}')
    config = load_config(args.config, base + list(args.overrides))
    config.model_overrides = sidecar.model_config   # the architecture is the artifact's
    trainer = Trainer(config)
    try:
        trainer.train()
    finally:
        trainer.close()
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
