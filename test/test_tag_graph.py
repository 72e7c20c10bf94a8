"""The TAG object: nodes, alignment edges of eqs. (14)-(17), Algorithm-2 loops, ablation, CLI."""
from itertools import combinations

import networkx as nx
import pytest

from robotag_ros.tag import ALIGN_TERMS, ALIGNMENT_EDGES, FORWARD_EDGES, LOOP_KINDS, TAGGraph
from robotag_ros.model.cli import main as graph_cli
from robotag_ros.tag.graph import BACKBONE_NODES

EQUATIONS = {  # eqs. (14)-(17) transcribed from the paper, by symbol
    'joints': ['p²', 'p³'],
    'keypoints_3d': ['κ3²', 'κ3³', 'κ3,fk³', 'κ3,fk²'],
    'keypoints_2d': ['κ2²', 'κ2,proj²', 'κ2,proj³'],
    'point_cloud': ['pts_fk²', 'pts_fk³', 'pts_unproj³'],
}
EQ19 = {  # term -> the symbol pair it aligns, from eq. (19)
    'align_joints': {'p³', 'p²'}, 'align_keypoints_3d': {'κ3³', 'κ3²'},
    'align_keypoints_3d_fk': {'κ3³', 'κ3,fk²'}, 'align_keypoints_2d': {'κ2,proj²', 'κ2²'},
    'align_points_fk_3d': {'pts_unproj³', 'pts_fk³'},
    'align_points_fk_2d': {'pts_unproj³', 'pts_fk²'},
}
TERMS_BY_KIND = {'joints': {'align_joints'},
                 'keypoints_3d': {'align_keypoints_3d', 'align_keypoints_3d_fk'},
                 'keypoints_2d': {'align_keypoints_2d'},
                 'point_cloud': {'align_points_fk_3d', 'align_points_fk_2d'}}


@pytest.fixture(scope='module')
def tag():
    return TAGGraph()


def symbol(tag, node):
    return tag.graph.nodes[node]['symbol']


def test_alignment_edges_are_the_pairs_of_eqs_14_to_17(tag):
    found = {(loop.kind, frozenset((symbol(tag, loop.alignment.node_a),
                                    symbol(tag, loop.alignment.node_b))))
             for loop in tag.all_loops()}
    expected = {(kind, frozenset(pair)) for kind, members in EQUATIONS.items()
                for pair in combinations(members, 2)}
    assert found == expected
    assert len(ALIGNMENT_EDGES) == 13


def test_each_eq19_term_sits_on_exactly_one_loop_with_its_pair(tag):
    assert [t.name for t in ALIGN_TERMS] == list(EQ19)
    for term, pair in EQ19.items():
        loops = [loop for loop in tag.all_loops() if loop.term == term]
        assert len(loops) == 1, term
        loop = loops[0]
        assert {symbol(tag, loop.alignment.node_a), symbol(tag, loop.alignment.node_b)} == pair
        assert tag.loop_for_term(term) == loop


def test_every_loop_is_a_cycle_with_exactly_one_alignment_edge(tag):
    forward = nx.Graph([(e.source, e.target) for e in FORWARD_EDGES])
    alignment = {frozenset((e.node_a, e.node_b)) for e in ALIGNMENT_EDGES}
    for loop in tag.all_loops():
        path = loop.nodes
        assert path[0] == loop.alignment.node_a and path[-1] == loop.alignment.node_b
        for u, v in zip(path[:-1], path[1:]):
            assert forward.has_edge(u, v), (loop.name, u, v)
            assert frozenset((u, v)) not in alignment
        assert len(set(path)) == len(path), 'a simple cycle visits each state once'
        assert len(loop.forward_edges) == len(path) - 1
        # Type 2 of Algorithm 2: the forward path runs from one backbone to the other.
        assert loop.backbone_connecting == all(b in path for b in BACKBONE_NODES)


def _edge_bits(cycle_nodes, closing, index):
    bits = 0
    edges = list(zip(cycle_nodes[:-1], cycle_nodes[1:])) + [closing]
    for u, v in edges:
        bits ^= 1 << index[frozenset((u, v))]
    return bits


def _gf2_rank(vectors):
    rank, pivots = 0, {}
    for v in vectors:
        while v:
            top = v.bit_length() - 1
            if top not in pivots:
                pivots[top] = v
                rank += 1
                break
            v ^= pivots[top]
    return rank


def test_loops_and_forward_cycles_form_a_fundamental_cycle_basis(tag):
    index = {}
    for e in FORWARD_EDGES:
        index.setdefault(frozenset((e.source, e.target)), len(index))
    for e in ALIGNMENT_EDGES:
        index.setdefault(frozenset((e.node_a, e.node_b)), len(index))
    vectors = [_edge_bits(loop.nodes, (loop.nodes[-1], loop.nodes[0]), index)
               for loop in tag.all_loops()]
    vectors += [_edge_bits(c, (c[-1], c[0]), index) for c in tag.forward_cycle_basis()]
    assert len(vectors) == tag.cycle_space_dimension()
    assert _gf2_rank(vectors) == len(vectors), 'independent over Z2: a basis of H1(G, Z2)'
    assert len(nx.cycle_basis(nx.Graph(tag.graph.to_undirected()))) == len(vectors)


def test_named_loops_run_through_the_expected_networks(tag):
    joints = tag.loop_for_term('align_joints')
    assert joints.backbone_connecting
    assert set(joints.modules) == {'joint_head_2d', 'backbone_2d', 'backbone_3d',
                                   'head_3d_encoder', 'joint_head_3d'}
    proj = tag.loop_for_term('align_keypoints_2d')
    assert not proj.backbone_connecting
    assert set(proj.modules) == {'keypoint_2d_head', 'keypoint_3d_head_2d'}


@pytest.mark.parametrize('off', [['joints'], ['keypoints_3d'], ['keypoints_2d'],
                                 ['point_cloud'], ['keypoints'], ['joints', 'point_cloud']])
def test_switching_a_kind_off_removes_exactly_its_terms(off):
    removed = set()
    for kind in off:
        removed |= set().union(*[TERMS_BY_KIND[k] for k in
                                 (['keypoints_2d', 'keypoints_3d'] if kind == 'keypoints'
                                  else [kind])])
    ablated = TAGGraph(off)
    assert set(ablated.active_terms()) == set(EQ19) - removed
    assert all(loop.kind not in ablated.disabled_kinds for loop in ablated.loops())
    assert len(ablated.all_loops()) == 13
    assert sorted(TERMS_BY_KIND) == sorted(LOOP_KINDS)


def test_unknown_loop_kind_is_a_clear_error():
    with pytest.raises(ValueError, match='unknown loop kind'):
        TAGGraph(['joint'])


def test_cli_lists_one_line_per_enabled_loop(tmp_path, capsys):
    assert graph_cli(['--list']) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if not ln.startswith('#')]
    assert len(lines) == 13
    assert sum('term=align_' in ln for ln in lines) == 6
    config = tmp_path / 'ablation.yaml'
    config.write_text('model:\n  loops_off: [point_cloud]\n')
    assert graph_cli(['--list', '--config', str(config)]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if not ln.startswith('#')]
    assert len(lines) == 10 and not any(ln.startswith('point_cloud') for ln in lines)


def test_cli_draws_png_and_dot(tmp_path, capsys):
    png = tmp_path / 'tag.png'
    assert graph_cli(['--draw', str(png)]) == 0
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    dot = png.with_suffix('.dot').read_text()
    assert dot.startswith('digraph') and 'align_points_fk_2d' in dot
    assert dot.count('style=dashed') == 13


def test_cli_bad_config_is_a_clear_error(tmp_path, capsys):
    config = tmp_path / 'bad.yaml'
    config.write_text('model:\n  loops_off: [jionts]\n')
    assert graph_cli(['--list', '--config', str(config)]) == 2
    assert 'jionts' in capsys.readouterr().err
