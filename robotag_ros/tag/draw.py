"""Drawing the TAG: a PNG (matplotlib) and a Graphviz DOT file (pydot via networkx)."""
from __future__ import annotations

import os

import networkx as nx

from robotag_ros.atomic_io import atomic_write, atomic_write_text
from robotag_ros.tag.graph import (JOINTS, KEYPOINTS_2D, KEYPOINTS_3D, NEURAL_NETWORK,
                                   POINT_CLOUD, TRANSFORMATION, TAGGraph)

# Hand-placed layout (x, y): 2D branch on the left, 3D branch on the right, image on top.
POSITIONS = {
    'image': (5.0, 10.0),
    'features_2d': (2.5, 8.6), 'depth_relative': (7.5, 8.6),
    'depth_regulator': (5.0, 7.6), 'robot_mask': (9.4, 7.6), 'depth_metric': (7.5, 6.6),
    'rotation': (3.9, 6.6), 'translation': (4.9, 5.9),
    'keypoints_2d': (-0.6, 7.3), 'keypoints_3d_2d': (0.2, 5.6), 'joint_angles_2d': (2.5, 5.0),
    'keypoints_2d_proj_2d': (0.2, 3.4), 'keypoints_3d_fk_2d': (1.6, 2.3),
    'points_fk_2d': (3.4, 2.3),
    'joint_angles_3d': (7.5, 5.0), 'keypoints_3d_3d': (9.2, 5.0),
    'points_unproj_3d': (5.6, 3.9), 'keypoints_2d_proj_3d': (9.6, 3.4),
    'keypoints_3d_fk_3d': (8.2, 2.3), 'points_fk_3d': (6.4, 2.3),
    'view_logits': (-0.9, 9.0), 'keypoint_relative_depth': (0.9, 9.6),
}
FORWARD_COLOURS = {NEURAL_NETWORK: '#1f77b4', TRANSFORMATION: '#7f7f7f'}
PRIOR_COLOUR = '#2ca02c'
LOOP_COLOURS = {JOINTS: '#d62728', KEYPOINTS_3D: '#9467bd', KEYPOINTS_2D: '#ff7f0e',
                POINT_CLOUD: '#8c564b'}
DISABLED_COLOUR = '#cccccc'


def _forward_colour(kind: str) -> str:
    return FORWARD_COLOURS.get(kind, PRIOR_COLOUR)


def _alignment_colour(data: dict) -> str:
    return LOOP_COLOURS[data['kind']] if data['enabled'] else DISABLED_COLOUR


def draw_png(tag: TAGGraph, path: str | os.PathLike, dpi: int = 110) -> None:
    """Draw nodes (paper symbols), forward edges by kind and alignment edges by loop kind."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    graph = tag.graph
    figure, axes = plt.subplots(figsize=(11, 8.5))
    labels = nx.get_node_attributes(graph, 'symbol')
    branch = nx.get_node_attributes(graph, 'branch')
    fill = {'2d': '#dbe9f6', '3d': '#fde2c8', 'input': '#eeeeee'}
    forward = [(u, v, d) for u, v, d in graph.edges(data=True) if d['type'] == 'forward']
    alignment = [(u, v, d) for u, v, d in graph.edges(data=True) if d['type'] == 'alignment']
    nx.draw_networkx_edges(graph, POSITIONS, edgelist=[(u, v) for u, v, _ in forward], ax=axes,
                           edge_color=[_forward_colour(d['kind']) for _, _, d in forward],
                           arrows=True, arrowsize=12, node_size=1300, width=1.4)
    nx.draw_networkx_edges(graph, POSITIONS, edgelist=[(u, v) for u, v, _ in alignment], ax=axes,
                           edge_color=[_alignment_colour(d) for _, _, d in alignment],
                           style='dashed', arrows=True, arrowstyle='<|-|>', arrowsize=9,
                           node_size=1300, width=1.6, connectionstyle='arc3,rad=0.25')
    nx.draw_networkx_nodes(graph, POSITIONS, ax=axes, node_size=1300,
                           node_color=[fill[branch[n]] for n in graph.nodes],
                           edgecolors='#333333')
    nx.draw_networkx_labels(graph, POSITIONS, labels=labels, ax=axes, font_size=10)
    legend = [Line2D([0], [0], color=FORWARD_COLOURS[NEURAL_NETWORK], label='forward: network'),
              Line2D([0], [0], color=FORWARD_COLOURS[TRANSFORMATION],
                     label='forward: transformation'),
              Line2D([0], [0], color=PRIOR_COLOUR, label='forward: robot prior')]
    legend += [Line2D([0], [0], color=c, linestyle='--', label=f'alignment: {k}')
               for k, c in LOOP_COLOURS.items()]
    if tag.disabled_kinds:
        legend.append(Line2D([0], [0], color=DISABLED_COLOUR, linestyle='--',
                             label='alignment: switched off'))
    axes.legend(handles=legend, loc='lower center', ncol=4, fontsize=8, frameon=False,
                bbox_to_anchor=(0.5, -0.08))
    axes.set_title('RoboTAG topological alignment graph (blue: 2D branch, orange: 3D branch)')
    axes.axis('off')
    figure.tight_layout()
    try:
        atomic_write(path, lambda tmp: figure.savefig(tmp, dpi=dpi, format='png'))
    finally:
        plt.close(figure)


def to_dot(tag: TAGGraph) -> str:
    """Graphviz DOT text of the graph (clusters per branch are left to the renderer)."""
    dot_graph = nx.MultiDiGraph()
    for node, data in tag.graph.nodes(data=True):
        dot_graph.add_node(node, label=f'"{data["symbol"]}\\n{node}"', shape='box',
                           style='filled', fillcolor={'2d': '"#dbe9f6"', '3d': '"#fde2c8"'}.get(
                               data['branch'], '"#eeeeee"'))
    for u, v, data in tag.graph.edges(data=True):
        if data['type'] == 'forward':
            label = data['kind'] + (':' + ','.join(data['modules']) if data['modules'] else '')
            dot_graph.add_edge(u, v, label=f'"{label}"',
                               color=f'"{_forward_colour(data["kind"])}"')
        else:
            label = f'eq{data["equation"]} {data["kind"]}' + (
                f' {data["term"]}' if data['term'] else '')
            dot_graph.add_edge(u, v, label=f'"{label}"', style='dashed', dir='both',
                               color=f'"{_alignment_colour(data)}"', constraint='false')
    return nx.nx_pydot.to_pydot(dot_graph).to_string()


def write_dot(tag: TAGGraph, path: str | os.PathLike) -> None:
    """Write :func:`to_dot` atomically."""
    atomic_write_text(path, to_dot(tag))
