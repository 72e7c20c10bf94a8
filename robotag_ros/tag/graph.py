"""The Topological Alignment Graph (paper Sec. 3.1-3.3) as a networkx object.

Nodes are the system states of eqs. (2)-(4) per branch; node ids are the field names of
:class:`robotag_ros.model.TAGOutputs`, so the graph, the model and the losses share one vocabulary.
Forward edges (eq. 5) carry their kind and the network modules that implement them; alignment
edges are those of eqs. (14)-(17). Closed loops follow Algorithm 2 and are reduced to a
fundamental cycle basis; each loop maps to the eq. (19) term it carries, if any.

``⇔`` is an equivalence: a chain such as eq. (15) ``κ3² ⇔ κ3³ ⇔ κ3,fk³ ⇔ κ3,fk²`` states that every
member equals every other, and eq. (19) indeed aligns non-adjacent members (α3: κ3³ with κ3,fk²;
α6: pts_unproj³ with pts_fk²). The graph therefore holds one alignment edge per pair of each
equation's members: 1 + 6 + 3 + 3 = 13 edges, six of which carry an eq. (19) term.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Iterable, Optional

import networkx as nx

# Forward-edge kinds (paper Sec. 3.1, "Forward Edges").
NEURAL_NETWORK = 'neural_network'
TRANSFORMATION = 'transformation'
PRIOR_KINEMATICS = 'robot_prior_kinematics'
PRIOR_MESH_POINTS = 'robot_prior_mesh_points'
PRIOR_PROJECTION = 'robot_prior_projection'
FORWARD_KINDS = (NEURAL_NETWORK, TRANSFORMATION, PRIOR_KINEMATICS, PRIOR_MESH_POINTS,
                 PRIOR_PROJECTION)

# Loop kinds, named after the alignment edge a loop contains (paper Table 3).
JOINTS = 'joints'
KEYPOINTS_3D = 'keypoints_3d'
KEYPOINTS_2D = 'keypoints_2d'
POINT_CLOUD = 'point_cloud'
LOOP_KINDS = (JOINTS, KEYPOINTS_3D, KEYPOINTS_2D, POINT_CLOUD)
# Table 3 switches keypoint loops on as one group; the alias expands to both kinds.
KIND_ALIASES = {'keypoints': (KEYPOINTS_2D, KEYPOINTS_3D), 'pc': (POINT_CLOUD,)}

# Algorithm 2's special states: the outputs of the 2D and 3D backbones.
BACKBONE_NODES = ('features_2d', 'depth_relative')


@dataclass(frozen=True)
class NodeSpec:
    """One system state: id (= TAGOutputs field), paper symbol, branch and what it holds."""

    name: str
    symbol: str
    branch: str          # '2d', '3d' or 'input'
    description: str
    in_paper: bool = True


NODES: tuple[NodeSpec, ...] = (
    NodeSpec('image', 'I', 'input', 'input RGB image (B, 3, H, W) in [0, 1]'),
    NodeSpec('features_2d', 'f', '2d', '2D backbone feature map (B, C, h, w)'),
    NodeSpec('depth_regulator', 'λ', '2d', 'depth regulator (B,), metres; scales D to D\''),
    NodeSpec('joint_angles_2d', 'p²', '2d', 'joint angles from f (B, n), radians'),
    NodeSpec('rotation', 'R', '2d', 'camera rotation R_cam_base (B, 3, 3)'),
    NodeSpec('translation', 'T', '2d', 'camera translation t_cam_base (B, 3), metres'),
    NodeSpec('keypoints_2d', 'κ2²', '2d', '2D keypoints from heatmaps (B, K, 2), pixels'),
    NodeSpec('keypoints_3d_2d', 'κ3²', '2d', '3D keypoints from f (B, K, 3), camera frame, m'),
    NodeSpec('keypoints_3d_fk_2d', 'κ3,fk²', '2d', 'FK keypoints of p² moved by R, T (B, K, 3)'),
    NodeSpec('keypoints_2d_proj_2d', 'κ2,proj²', '2d', 'projection of κ3² (B, K, 2), pixels'),
    NodeSpec('points_fk_2d', 'pts_fk²', '2d', 'mesh points of p² moved by R, T (B, N, 3), m'),
    NodeSpec('view_logits', 'v', '2d', 'camera azimuth (base, arm) and elevation bin logits',
             in_paper=False),
    NodeSpec('keypoint_relative_depth', 'Δz²', '2d',
             'keypoint depths relative to the base keypoint (B, K), m', in_paper=False),
    NodeSpec('depth_relative', 'D', '3d', 'relative depth (B, 1, h, w), unit image mean'),
    NodeSpec('depth_metric', 'D\'', '3d', 'absolute depth λ·D (B, 1, h, w), metres'),
    NodeSpec('robot_mask', 'M', '3d', 'robot mask logits (B, 1, h, w) choosing pts_unproj³',
             in_paper=False),
    NodeSpec('joint_angles_3d', 'p³', '3d', 'joint angles from D\' (B, n), radians'),
    NodeSpec('keypoints_3d_3d', 'κ3³', '3d', '3D keypoints from D\' (B, K, 3), camera frame, m'),
    NodeSpec('keypoints_3d_fk_3d', 'κ3,fk³', '3d', 'FK keypoints of p³ moved by R, T (B, K, 3)'),
    NodeSpec('keypoints_2d_proj_3d', 'κ2,proj³', '3d', 'projection of κ3³ (B, K, 2), pixels'),
    NodeSpec('points_fk_3d', 'pts_fk³', '3d', 'mesh points of p³ moved by R, T (B, N, 3), m'),
    NodeSpec('points_unproj_3d', 'pts_unproj³', '3d',
             'D\' unprojected on the P most robot-like pixels (B, P, 3), camera frame, m'),
)
NODE_BY_NAME = {n.name: n for n in NODES}
# States in image pixels (the others are metres or radians).
PIXEL_NODES = frozenset({'keypoints_2d', 'keypoints_2d_proj_2d', 'keypoints_2d_proj_3d'})


@dataclass(frozen=True)
class ForwardEdgeSpec:
    """A dependency ``target = g(source, ...)`` (eq. 5) and the modules that implement g."""

    source: str
    target: str
    kind: str
    modules: tuple[str, ...] = ()      # TAGModel attribute names, for neural-network edges
    differentiable: bool = True        # False where the target uses the source only as an index


def _nn(source: str, target: str, *modules: str) -> ForwardEdgeSpec:
    return ForwardEdgeSpec(source, target, NEURAL_NETWORK, modules)


FORWARD_EDGES: tuple[ForwardEdgeSpec, ...] = (
    # eqs. (7)-(8): the two backbones.
    _nn('image', 'features_2d', 'backbone_2d'),
    _nn('image', 'depth_relative', 'backbone_3d'),
    # eq. (9): heads on f.
    _nn('features_2d', 'depth_regulator', 'depth_regulator_head'),
    _nn('features_2d', 'joint_angles_2d', 'joint_head_2d'),
    _nn('features_2d', 'rotation', 'rotation_head'),
    _nn('features_2d', 'translation', 'translation_head'),
    _nn('features_2d', 'keypoints_2d', 'keypoint_2d_head'),
    _nn('features_2d', 'keypoints_3d_2d', 'keypoint_3d_head_2d'),
    # Beyond the paper: which side the camera is on, and the keypoints' depth order (the fit
    # at inference reads both to tell mirrored arms apart).
    _nn('features_2d', 'view_logits', 'view_head'),
    _nn('features_2d', 'keypoint_relative_depth', 'keypoint_depth_head'),
    # eq. (10): D' = λ·D.
    ForwardEdgeSpec('depth_relative', 'depth_metric', TRANSFORMATION),
    ForwardEdgeSpec('depth_regulator', 'depth_metric', TRANSFORMATION),
    # The robot mask that picks the pixels to unproject (not a paper node; supervised by masks).
    # Its head reads the 3D backbone's last decoder features, which travel with D.
    _nn('depth_relative', 'robot_mask', 'mask_head'),
    # eq. (11): 3D-branch states from D'.
    ForwardEdgeSpec('depth_metric', 'points_unproj_3d', TRANSFORMATION),
    ForwardEdgeSpec('robot_mask', 'points_unproj_3d', TRANSFORMATION, differentiable=False),
    _nn('depth_metric', 'joint_angles_3d', 'head_3d_encoder', 'joint_head_3d'),
    _nn('depth_metric', 'keypoints_3d_3d', 'head_3d_encoder', 'keypoint_3d_head_3d'),
    # eq. (12): robot prior (URDF kinematics, mesh points) in both branches, moved by (R, T).
    ForwardEdgeSpec('joint_angles_2d', 'keypoints_3d_fk_2d', PRIOR_KINEMATICS),
    ForwardEdgeSpec('rotation', 'keypoints_3d_fk_2d', TRANSFORMATION),
    ForwardEdgeSpec('translation', 'keypoints_3d_fk_2d', TRANSFORMATION),
    ForwardEdgeSpec('joint_angles_2d', 'points_fk_2d', PRIOR_MESH_POINTS),
    ForwardEdgeSpec('rotation', 'points_fk_2d', TRANSFORMATION),
    ForwardEdgeSpec('translation', 'points_fk_2d', TRANSFORMATION),
    ForwardEdgeSpec('joint_angles_3d', 'keypoints_3d_fk_3d', PRIOR_KINEMATICS),
    ForwardEdgeSpec('rotation', 'keypoints_3d_fk_3d', TRANSFORMATION),
    ForwardEdgeSpec('translation', 'keypoints_3d_fk_3d', TRANSFORMATION),
    ForwardEdgeSpec('joint_angles_3d', 'points_fk_3d', PRIOR_MESH_POINTS),
    ForwardEdgeSpec('rotation', 'points_fk_3d', TRANSFORMATION),
    ForwardEdgeSpec('translation', 'points_fk_3d', TRANSFORMATION),
    # eq. (13): camera projection of the camera-frame 3D keypoints (intrinsics K are an input).
    ForwardEdgeSpec('keypoints_3d_2d', 'keypoints_2d_proj_2d', PRIOR_PROJECTION),
    ForwardEdgeSpec('keypoints_3d_3d', 'keypoints_2d_proj_3d', PRIOR_PROJECTION),
)

# The parent through which each state is first derived. These edges form the spanning tree of the
# forward graph; a loop is its alignment edge plus the tree path between the two aligned states,
# i.e. up both derivation chains to their common ancestor, which is where the gradient of the
# alignment term flows.
PRIMARY_PARENT = {
    'features_2d': 'image', 'depth_relative': 'image', 'depth_regulator': 'features_2d',
    'joint_angles_2d': 'features_2d', 'rotation': 'features_2d', 'translation': 'features_2d',
    'keypoints_2d': 'features_2d', 'keypoints_3d_2d': 'features_2d',
    'view_logits': 'features_2d', 'keypoint_relative_depth': 'features_2d',
    'depth_metric': 'depth_relative', 'robot_mask': 'depth_relative',
    'points_unproj_3d': 'depth_metric', 'joint_angles_3d': 'depth_metric',
    'keypoints_3d_3d': 'depth_metric', 'keypoints_3d_fk_2d': 'joint_angles_2d',
    'points_fk_2d': 'joint_angles_2d', 'keypoints_3d_fk_3d': 'joint_angles_3d',
    'points_fk_3d': 'joint_angles_3d', 'keypoints_2d_proj_2d': 'keypoints_3d_2d',
    'keypoints_2d_proj_3d': 'keypoints_3d_3d',
}


@dataclass(frozen=True)
class AlignTermSpec:
    """One term of eq. (19): its name, weight symbol, the aligned pair and the distance used."""

    name: str
    weight: str          # 'alpha1'..'alpha6', key of the loss config
    node_a: str
    node_b: str
    distance: str        # 'mse' (per element, eq. 19's 1/n, 1/m), 'chamfer_uni', 'chamfer'
    formula: str


ALIGN_TERMS: tuple[AlignTermSpec, ...] = (
    AlignTermSpec('align_joints', 'alpha1', 'joint_angles_3d', 'joint_angles_2d', 'mse',
                  'α1/n ‖p³ − p²‖²'),
    AlignTermSpec('align_keypoints_3d', 'alpha2', 'keypoints_3d_3d', 'keypoints_3d_2d', 'mse',
                  'α2/m ‖κ3³ − κ3²‖²'),
    AlignTermSpec('align_keypoints_3d_fk', 'alpha3', 'keypoints_3d_3d', 'keypoints_3d_fk_2d',
                  'mse', 'α3/m ‖κ3³ − κ3,fk²‖²'),
    AlignTermSpec('align_keypoints_2d', 'alpha4', 'keypoints_2d_proj_2d', 'keypoints_2d', 'mse',
                  'α4/m ‖κ2,proj² − κ2²‖²'),
    AlignTermSpec('align_points_fk_3d', 'alpha5', 'points_unproj_3d', 'points_fk_3d',
                  'chamfer_uni', 'α5 L_Chamfer^uni(pts_unproj³, pts_fk³)'),
    AlignTermSpec('align_points_fk_2d', 'alpha6', 'points_unproj_3d', 'points_fk_2d', 'chamfer',
                  'α6 L_Chamfer(pts_unproj³, pts_fk²)'),
)
ALIGN_TERM_BY_NAME = {t.name: t for t in ALIGN_TERMS}

# eqs. (14)-(17): the members of each equivalence, with the loop kind they give.
ALIGNMENT_EQUATIONS: dict[int, tuple[str, tuple[str, ...]]] = {
    14: (JOINTS, ('joint_angles_2d', 'joint_angles_3d')),
    15: (KEYPOINTS_3D, ('keypoints_3d_2d', 'keypoints_3d_3d', 'keypoints_3d_fk_3d',
                        'keypoints_3d_fk_2d')),
    16: (KEYPOINTS_2D, ('keypoints_2d', 'keypoints_2d_proj_2d', 'keypoints_2d_proj_3d')),
    17: (POINT_CLOUD, ('points_fk_2d', 'points_fk_3d', 'points_unproj_3d')),
}


@dataclass(frozen=True)
class AlignmentEdge:
    """An alignment edge: two equivalent states, its equation, kind and eq. (19) term (if any)."""

    node_a: str
    node_b: str
    equation: int
    kind: str
    term: Optional[str]

    @property
    def pair(self) -> frozenset:
        return frozenset((self.node_a, self.node_b))


def _alignment_edges() -> tuple[AlignmentEdge, ...]:
    term_by_pair = {frozenset((t.node_a, t.node_b)): t.name for t in ALIGN_TERMS}
    edges = []
    for equation, (kind, members) in ALIGNMENT_EQUATIONS.items():
        for a, b in combinations(members, 2):
            edges.append(AlignmentEdge(a, b, equation, kind, term_by_pair.get(frozenset((a, b)))))
    return tuple(edges)


ALIGNMENT_EDGES = _alignment_edges()


@dataclass(frozen=True)
class Loop:
    """A closed loop of Algorithm 2: one alignment edge plus forward edges.

    ``nodes`` runs from ``alignment.node_a`` along the forward path to ``alignment.node_b``; the
    alignment edge closes it. ``backbone_connecting`` is True for the paper's second loop type
    (the path runs from one backbone output through the image to the other).
    """

    alignment: AlignmentEdge
    nodes: tuple[str, ...]
    forward_edges: tuple[tuple[str, str], ...]   # (source, target) in the forward direction
    modules: tuple[str, ...]                      # networks on those forward edges
    backbone_connecting: bool

    @property
    def kind(self) -> str:
        return self.alignment.kind

    @property
    def term(self) -> Optional[str]:
        return self.alignment.term

    @property
    def name(self) -> str:
        return f'{self.alignment.node_a}<=>{self.alignment.node_b}'


def expand_kinds(kinds: Iterable[str]) -> set[str]:
    """Loop kinds named in config ('keypoints' covers 2D and 3D) -> the set of base kinds."""
    expanded = set()
    for kind in kinds:
        if kind in LOOP_KINDS:
            expanded.add(kind)
        elif kind in KIND_ALIASES:
            expanded.update(KIND_ALIASES[kind])
        else:
            raise ValueError(f'unknown loop kind {kind!r}; known: '
                             f'{sorted(LOOP_KINDS) + sorted(KIND_ALIASES)}')
    return expanded


class TAGGraph:
    """The TAG with its loops; ``disabled_kinds`` switches loop kinds off for ablation."""

    def __init__(self, disabled_kinds: Iterable[str] = ()):
        self.disabled_kinds = frozenset(expand_kinds(disabled_kinds))
        self.graph = nx.MultiDiGraph()
        for node in NODES:
            self.graph.add_node(node.name, symbol=node.symbol, branch=node.branch,
                                description=node.description, in_paper=node.in_paper)
        for edge in FORWARD_EDGES:
            self.graph.add_edge(edge.source, edge.target, type='forward', kind=edge.kind,
                                modules=edge.modules, differentiable=edge.differentiable)
        for edge in ALIGNMENT_EDGES:
            self.graph.add_edge(edge.node_a, edge.node_b, type='alignment', kind=edge.kind,
                                equation=edge.equation, term=edge.term,
                                enabled=edge.kind not in self.disabled_kinds)
        self._tree = nx.Graph([(parent, child) for child, parent in PRIMARY_PARENT.items()])
        self._check_tree()
        self._modules_by_edge = {(e.source, e.target): e.modules for e in FORWARD_EDGES}

    def _check_tree(self) -> None:
        forward = {(e.source, e.target) for e in FORWARD_EDGES}
        missing = [(p, c) for c, p in PRIMARY_PARENT.items() if (p, c) not in forward]
        if missing or not nx.is_tree(self._tree) or set(self._tree) != set(NODE_BY_NAME):
            raise RuntimeError(f'primary parents do not form a spanning tree of forward edges: '
                               f'{missing}')

    # --- loops -----------------------------------------------------------------------------
    def _loop_for(self, edge: AlignmentEdge) -> Loop:
        path = nx.shortest_path(self._tree, edge.node_a, edge.node_b)  # unique in a tree
        forward_edges, modules = [], []
        for u, v in zip(path[:-1], path[1:]):
            directed = (u, v) if PRIMARY_PARENT.get(v) == u else (v, u)
            forward_edges.append(directed)
            for module in self._modules_by_edge[directed]:
                if module not in modules:
                    modules.append(module)
        connecting = all(b in path for b in BACKBONE_NODES)
        return Loop(edge, tuple(path), tuple(forward_edges), tuple(modules), connecting)

    def all_loops(self) -> list[Loop]:
        """Every alignment edge's fundamental loop, enabled or not."""
        return [self._loop_for(edge) for edge in ALIGNMENT_EDGES]

    def loops(self, kinds: Optional[Iterable[str]] = None) -> list[Loop]:
        """The enabled loops (optionally only of the given kinds)."""
        wanted = expand_kinds(kinds) if kinds is not None else set(LOOP_KINDS)
        return [loop for loop in self.all_loops()
                if loop.kind in wanted and loop.kind not in self.disabled_kinds]

    def loop_for_term(self, term: str) -> Loop:
        """The loop that carries an eq. (19) term (enabled or not)."""
        for loop in self.all_loops():
            if loop.term == term:
                return loop
        raise KeyError(f'no loop carries the term {term!r}; terms: {sorted(ALIGN_TERM_BY_NAME)}')

    def active_terms(self) -> list[str]:
        """The eq. (19) terms of the enabled loops, in eq. (19) order."""
        enabled = {loop.term for loop in self.loops() if loop.term is not None}
        return [t.name for t in ALIGN_TERMS if t.name in enabled]

    def forward_cycle_basis(self) -> list[list[str]]:
        """Fundamental cycles made of forward edges only (no alignment edge: not TAG loops)."""
        undirected = nx.Graph([(e.source, e.target) for e in FORWARD_EDGES])
        cycles = []
        for source, target in undirected.edges():
            if self._tree.has_edge(source, target):
                continue
            path = nx.shortest_path(self._tree, source, target)
            cycles.append(path)
        return cycles

    def cycle_space_dimension(self) -> int:
        """Dimension of H1(G; Z2) of the undirected graph (edges - nodes + components)."""
        undirected = nx.MultiGraph(self.graph.to_undirected())
        return (undirected.number_of_edges() - undirected.number_of_nodes()
                + nx.number_connected_components(undirected))

    def upstream_modules(self, node: str) -> set[str]:
        """Networks whose parameters the state ``node`` depends on differentiably."""
        differentiable = nx.DiGraph([(e.source, e.target) for e in FORWARD_EDGES
                                     if e.differentiable])
        reached = nx.ancestors(differentiable, node) | {node}
        modules = set()
        for e in FORWARD_EDGES:
            if e.differentiable and e.target in reached:
                modules.update(e.modules)
        return modules

    def describe_loop(self, loop: Loop) -> str:
        """One line: kind, alignment edge with symbols and term, forward edges with their kinds."""
        a, b = loop.alignment.node_a, loop.alignment.node_b
        symbol = nx.get_node_attributes(self.graph, 'symbol')
        term = loop.term or '-'
        hops = []
        for source, target in loop.forward_edges:
            spec = next(e for e in FORWARD_EDGES if (e.source, e.target) == (source, target))
            label = spec.kind + (f'[{",".join(spec.modules)}]' if spec.modules else '')
            hops.append(f'{symbol[source]}->{symbol[target]} ({label})')
        kind = loop.kind + (' (backbone-connecting)' if loop.backbone_connecting else '')
        return (f'{kind:<36} eq.({loop.alignment.equation}) {symbol[a]} <=> {symbol[b]} '
                f'term={term} | ' + '; '.join(hops))
