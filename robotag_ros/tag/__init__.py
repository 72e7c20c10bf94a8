"""The Topological Alignment Graph: nodes, forward/alignment edges, loops, loop -> loss term."""
from robotag_ros.tag.graph import (ALIGN_TERMS, ALIGNMENT_EDGES, FORWARD_EDGES, LOOP_KINDS, NODES,
                                   AlignmentEdge, Loop, TAGGraph, expand_kinds)

__all__ = ['ALIGN_TERMS', 'ALIGNMENT_EDGES', 'FORWARD_EDGES', 'LOOP_KINDS', 'NODES',
           'AlignmentEdge', 'Loop', 'TAGGraph', 'expand_kinds']
