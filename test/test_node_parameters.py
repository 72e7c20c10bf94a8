"""The nodes' parameter schemas: the committed params files and the docs table are what the
schemas render, and every value is checked by type, range, choices and the schema's rules."""
import pytest

from robotag_ros.parameters.__main__ import main as render_main, rendered_files
from robotag_ros.parameters.estimator import ESTIMATOR_PARAMETERS
from robotag_ros.parameters.schema import Parameter, parameter_problem, render_docs_table


def test_committed_params_files_and_docs_table_are_the_schemas():
    rendered = rendered_files()
    assert {path.name for path in rendered} == {'estimator.yaml', 'calibrator.yaml', 'node.md'}
    for path, text in rendered.items():
        assert path.read_text() == text, (
            f'{path} differs from its schema: run python -m robotag_ros.parameters --write')
    assert render_docs_table(ESTIMATOR_PARAMETERS) in rendered[next(
        p for p in rendered if p.name == 'node.md')]


def test_the_render_command_reports_stale_files_and_rewrites_them(tmp_path, monkeypatch, capsys):
    import robotag_ros.parameters.__main__ as render
    stale = tmp_path / 'estimator.yaml'
    stale.write_text('estimator: {}\n')
    monkeypatch.setattr(render, 'rendered_files', lambda: {stale: 'rendered\n'})
    assert render_main([]) == 1 and 'differs from its schema' in capsys.readouterr().out
    assert stale.read_text() == 'estimator: {}\n'
    assert render_main(['--write']) == 0 and stale.read_text() == 'rendered\n'
    assert render_main([]) == 0


@pytest.mark.parametrize('name, value, problem', [
    ('backend', 'cuda', "backend must be one of ('auto', 'torch', 'onnxruntime', 'tensorrt')"),
    ('device', 'tensorrt', "device must be 'cpu', 'cuda' or 'cuda:N', got 'tensorrt'"),
    ('estimator_factory', 'no_colon', "estimator_factory must be 'module:callable'"),
    ('tf_parent', 'world', "tf_parent must be one of ('camera', 'base')"),
    ('min_consistency', 1.5, 'min_consistency must be within 0.0..1.0, got 1.5'),
    ('min_consistency', float('nan'), 'min_consistency must be within 0.0..1.0, got nan'),
    ('image_qos_depth', 0, 'image_qos_depth must be within 1..100, got 0'),
    ('image_qos_depth', True, 'image_qos_depth must be int, got True'),
    ('publish_tf', 'yes', "publish_tf must be bool, got 'yes'"),
    ('intrinsics', [600.0, 600.0, 320.0], 'intrinsics must be 4 finite numbers'),
    ('intrinsics', [-1.0, 600.0, 320.0, 240.0], 'focal lengths must be positive'),
    ('intrinsics', ['a', 1, 2, 3], 'intrinsics must be a list of numbers'),
])
def test_estimator_values_are_refused_with_the_reason(name, value, problem):
    (parameter,) = [p for p in ESTIMATOR_PARAMETERS if p.name == name]
    assert problem in parameter_problem(parameter, value)


def test_good_values_pass_and_floats_take_integers():
    by_name = {p.name: p for p in ESTIMATOR_PARAMETERS}
    good = (('device', 'cuda:1'), ('min_consistency', 1), ('backend', 'tensorrt'),
            ('intrinsics', [615.0, 615.0, 320.0, 240.0]), ('intrinsics', [0.0] * 4))
    for name, value in good:
        assert parameter_problem(by_name[name], value) is None, (name, value)
    check = Parameter('x', 1.0, 'a number', value_range=(0.0, 2.0),
                      check=lambda v: 'not 1.5' if v == 1.5 else None)
    assert parameter_problem(check, 1.5) == 'not 1.5'
