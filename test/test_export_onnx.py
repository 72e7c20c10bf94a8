"""ONNX export: checker, ORT vs PyTorch on real frames, external data, corrupt files, CLI."""
import numpy as np
import pytest
import torch

from inference_fixtures import (INPUT_HW, SAMPLE, artifact_with_sidecar_changes,
                                make_tiny_artifact, sample_frames)
from robotag_ros.export.onnx_export import (ExportMismatch, check_onnx_model, compare_with_torch,
                                            export_onnx, external_data_path, network_inputs)
from robotag_ros.model.artifact import load_model
from robotag_ros.inference.backends import OnnxRuntimeBackend, TorchBackend
from robotag_ros.model.inference_network import INFERENCE_OUTPUT_NAMES


@pytest.fixture(scope='module')
def artifact(tmp_path_factory, panda):
    return make_tiny_artifact(tmp_path_factory.mktemp('artifact') / 'panda_tiny', panda)


@pytest.fixture(scope='module')
def model(artifact, panda):
    return load_model(artifact, robot=panda)[0]


@pytest.fixture(scope='module')
def onnx_file(tmp_path_factory, model):
    return export_onnx(model, INPUT_HW, tmp_path_factory.mktemp('onnx') / 'tiny.onnx',
                       external_data=False)


@pytest.fixture(scope='module')
def real_inputs(panda, model):
    return network_inputs(sample_frames(panda, 2), INPUT_HW, model.preprocessing)


def test_export_passes_checker_and_matches_torch_on_real_frames(model, onnx_file, real_inputs,
                                                                capsys):
    check_onnx_model(onnx_file)  # raises on failure
    assert not external_data_path(onnx_file).exists()
    report = compare_with_torch(model, onnx_file, inputs=real_inputs, atol=1e-4, rtol=1e-4)
    assert set(report) == set(INFERENCE_OUTPUT_NAMES)
    assert max(report.values()) < 1e-3
    printed = capsys.readouterr().out
    assert 'on 2 frame(s)' in printed and 'max |onnx - torch|' in printed
    # The real frames are letterboxed: 4:3 into 96x96 leaves black bands top and bottom, which
    # the network sees normalised like any black pixel.
    image = real_inputs[0]
    black = [-m / s for m, s in zip(model.preprocessing.mean, model.preprocessing.std)]
    assert image.shape == (2, 3, *INPUT_HW)
    np.testing.assert_allclose(image[:, :, :8].amax((0, 2, 3)), black, rtol=1e-6)
    np.testing.assert_allclose(image[:, :, :8].amin((0, 2, 3)), black, rtol=1e-6)


def test_keypoint_pooled_joint_head_exports_and_matches_torch(tmp_path, panda, real_inputs):
    artifact = make_tiny_artifact(tmp_path / 'keypoint_joints', panda, seed=1,
                                  joint_features='keypoints')
    model = load_model(artifact, robot=panda)[0]
    assert model.config.joint_features == 'keypoints'
    onnx_file = export_onnx(model, INPUT_HW, tmp_path / 'keypoint_joints.onnx',
                            external_data=False)
    report = compare_with_torch(model, onnx_file, inputs=real_inputs, atol=1e-4, rtol=1e-4,
                                verbose=False)
    assert max(report.values()) < 1e-3


def test_parity_failure_names_the_outputs(model, onnx_file, real_inputs):
    perturbed = type(model)(model.robot, model.config)
    perturbed.load_state_dict(model.state_dict())
    with torch.no_grad():  # a weight changed after export: only the 2D joint head differs
        for parameter in perturbed.joint_head_2d.parameters():
            parameter.add_(0.5)
    with pytest.raises(ExportMismatch, match=r"\['joint_angles_2d'\]"):
        compare_with_torch(perturbed.eval(), onnx_file, inputs=real_inputs, verbose=False)


@pytest.fixture(scope='module')
def split_onnx(tmp_path_factory, model):
    return export_onnx(model, INPUT_HW, tmp_path_factory.mktemp('split') / 'split.onnx',
                       external_data=True)


def test_external_data_file_is_written_and_loaded(split_onnx, model, real_inputs):
    data = external_data_path(split_onnx)
    assert data.is_file() and data.stat().st_size > split_onnx.stat().st_size
    assert not list(split_onnx.parent.glob('.split.onnx.*'))  # no staging leftovers
    check_onnx_model(split_onnx)
    image, K = (t[:1].numpy() for t in real_inputs)
    onnx_out = OnnxRuntimeBackend(split_onnx, input_hw=INPUT_HW).run(image, K)
    torch_out = TorchBackend(model).run(image, K)
    for name in INFERENCE_OUTPUT_NAMES:
        np.testing.assert_allclose(onnx_out[name], torch_out[name].numpy(), atol=1e-4, rtol=1e-4)


def test_missing_external_data_is_a_clear_error(tmp_path, split_onnx):
    alone = tmp_path / split_onnx.name  # the model copied without its .onnx.data
    alone.write_bytes(split_onnx.read_bytes())
    with pytest.raises(ValueError, match='split.onnx'):
        check_onnx_model(alone)
    with pytest.raises(ValueError, match='ONNX Runtime cannot load it'):
        OnnxRuntimeBackend(alone)


def test_corrupt_onnx_file_is_a_clear_error(tmp_path, onnx_file):
    corrupt = tmp_path / 'corrupt.onnx'
    corrupt.write_bytes(onnx_file.read_bytes()[:5000])  # truncated download
    with pytest.raises(ValueError, match=r'corrupt\.onnx: ONNX Runtime cannot load it'):
        OnnxRuntimeBackend(corrupt)
    with pytest.raises(ValueError, match=r'corrupt\.onnx: fails onnx\.checker'):
        check_onnx_model(corrupt)
    with pytest.raises(FileNotFoundError, match='absent.onnx'):
        OnnxRuntimeBackend(tmp_path / 'absent.onnx')


def test_onnx_for_another_input_size_is_refused(onnx_file):
    with pytest.raises(ValueError, match=r'exported for \(96, 96\) inputs, the artifact wants '
                                         r'\(128, 128\)'):
        OnnxRuntimeBackend(onnx_file, input_hw=(128, 128))


def test_export_records_its_input_and_the_runtime_checks_it(tmp_path, onnx_file, model):
    import onnx
    from robotag_ros.model.inference_network import INPUT_CONVENTION_KEY, PREPROCESSING_KEY
    from robotag_ros.model.preprocessing import ImagePreprocessing
    metadata = {p.key: p.value for p in onnx.load(str(onnx_file)).metadata_props}
    assert INPUT_CONVENTION_KEY in metadata and PREPROCESSING_KEY in metadata
    OnnxRuntimeBackend(onnx_file, preprocessing=model.preprocessing)   # the artifact's own
    other = ImagePreprocessing(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match='exported for preprocessing .* the artifact says'):
        OnnxRuntimeBackend(onnx_file, preprocessing=other)
    # A file exported before the normalisation left the graph carries no convention.
    proto = onnx.load(str(onnx_file))
    del proto.metadata_props[:]
    older = tmp_path / 'older.onnx'
    onnx.save(proto, str(older))
    with pytest.raises(ValueError, match=r'older\.onnx: its image input is not the normalised'
                                         r'.*re-export'):
        OnnxRuntimeBackend(older)


def test_cli_exports_checks_and_reports(tmp_path, artifact, capsys):
    from robotag_ros.export.cli import main
    out = tmp_path / 'model.onnx'
    stale = external_data_path(out)
    stale.write_bytes(b'weights of an earlier export')
    assert main(['--model', str(artifact), '--onnx', str(out), '--dream', str(SAMPLE),
                 '--external-data', 'no', '--atol', '1e-4']) == 0
    printed = capsys.readouterr().out
    # Embedded weights: a stale side file of an earlier export must not stay beside the model.
    assert out.is_file() and not stale.exists()
    assert 'full_check passed' in printed and 'parity frames: ' in printed
    for name in INFERENCE_OUTPUT_NAMES:
        assert f'{name:20s} max |onnx - torch|' in printed
    assert f'wrote {out} (opset 18); ONNX Runtime matches PyTorch within tolerance' in printed


def test_cli_reports_the_opset_the_file_holds(tmp_path, artifact, capsys):
    import onnx
    from robotag_ros.export.cli import main
    out = tmp_path / 'model.onnx'
    assert main(['--model', str(artifact), '--onnx', str(out), '--dream', str(SAMPLE),
                 '--frames', '1', '--opset', '21']) == 0
    opsets = {o.domain: o.version for o in onnx.load(str(out)).opset_import}
    assert opsets[''] == 21 and '(opset 21)' in capsys.readouterr().out


def _refused_with_one_line(capsys, argv, expected):
    from robotag_ros.export.cli import main
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert 'Traceback' not in captured.err
    assert captured.err.strip().splitlines() == [f'robotag-export: error: {expected}']


def test_cli_refuses_bad_arguments_before_writing(tmp_path, artifact, capsys):
    import cv2
    import onnx
    kept = tmp_path / 'keep.onnx'
    kept.write_bytes(b'an earlier export')
    thin = tmp_path / 'thin.png'
    cv2.imwrite(str(thin), np.zeros((1, 4000, 3), np.uint8))
    highest = onnx.defs.onnx_opset_version()
    model = ['--model', str(artifact)]
    for argv, expected in (
            (['--onnx', str(kept), '--opset', '5'],
             f'--opset 5: the exporter writes opsets 18 to {highest}'),
            (['--onnx', str(tmp_path)], f'--onnx {tmp_path} is a folder; name the .onnx file '
             'to write'),
            (['--onnx', str(kept / 'm.onnx')], f'--onnx {kept / "m.onnx"}: {kept} is a file, '
             'not a folder'),
            (['--onnx', str(kept), '--image', str(thin), '--intrinsics', '600,600,2000,0.5'],
             'a 4000x1 image (width x height) cannot be used: letterboxed into the 96x96 '
             'network input it would be 96x0 pixels')):
        _refused_with_one_line(capsys, model + argv, expected)
        assert kept.read_bytes() == b'an earlier export'
        assert sorted(p.name for p in tmp_path.iterdir()) == ['keep.onnx', 'thin.png']


def test_cli_refuses_a_sidecar_without_a_usable_input_size(tmp_path, artifact, capsys):
    artifact_with_sidecar_changes(artifact, tmp_path / 'zero', input_size=[0, 0])
    _refused_with_one_line(capsys, ['--model', str(tmp_path / 'zero'), '--onnx',
                                    str(tmp_path / 'm.onnx')],
                           f'{tmp_path / "zero.yaml"}: input_size must be [height, width], each '
                           'an integer from 32 to 4096 pixels, got [0, 0]')
    assert not (tmp_path / 'm.onnx').exists()


def test_cli_engine_without_tensorrt_fails_clearly(tmp_path, artifact, capsys):
    try:
        import tensorrt  # noqa: F401
        pytest.skip('TensorRT is installed here')
    except ImportError:
        pass
    from robotag_ros.export.cli import main
    code = main(['--model', str(artifact), '--onnx', str(tmp_path / 'm.onnx'), '--engine',
                 str(tmp_path / 'm.plan'), '--fp16', '--dream', str(SAMPLE)])
    assert code == 2
    error = capsys.readouterr().err
    assert 'TensorRT is not installed' in error and 'pip install tensorrt' in error
    assert not (tmp_path / 'm.plan').exists()


def test_cli_bad_artifact_fails_clearly(tmp_path, capsys):
    from robotag_ros.export.cli import main
    code = main(['--model', str(tmp_path / 'nothing'), '--onnx', str(tmp_path / 'm.onnx')])
    assert code == 2
    assert 'artifact sidecar not found' in capsys.readouterr().err
    assert not (tmp_path / 'm.onnx').exists()
