"""L_align, the 2D-3D consistency loss of eq. (19): one term per enabled loop of the graph."""
from __future__ import annotations

import torch

from robotag_ros.geometry import chamfer_distance
from robotag_ros.model.outputs import TAGOutputs
from robotag_ros.tag.graph import ALIGN_TERM_BY_NAME, PIXEL_NODES, AlignTermSpec, TAGGraph


# Per-item values of the distance terms pass through cap * tanh(value / cap): linear (the paper's
# squared L2) for errors well under ~1 m (or one image side for 2D terms), bounded beyond. A
# network that starts far off (a point near the camera plane projects to 1e4 pixels, a depth
# spike unprojects to 100 m) then yields a bounded loss instead of a 1e6 spike that wrecks Adam's
# moment estimates. Joint and rotation terms are bounded by construction and are not capped.
ROBUST_CAP = 1.0


def soft_cap(values: torch.Tensor, cap: float = ROBUST_CAP) -> torch.Tensor:
    """Bound non-negative per-item loss values smoothly at ``cap`` (identity near zero)."""
    return cap * torch.tanh(values / cap)


def squared_error_per_item(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """‖a − b‖² / count per batch item: eq. (19)'s 1/n (joints) and 1/m (keypoints).

    (B, n) -> mean squared joint error; (B, K, d) -> mean squared point distance per keypoint.
    """
    diff = (a - b).square().reshape(a.shape[0], -1)
    per_entity = a.shape[1]
    return diff.sum(-1) / per_entity


def pixel_scale(outputs: TAGOutputs) -> float:
    """2D terms use pixels / the image's longer side, so weights hold across resolutions."""
    return float(max(outputs.image_hw))


def align_term_per_item(spec: AlignTermSpec, outputs: TAGOutputs) -> torch.Tensor:
    """The unweighted value of one eq. (19) term, (B,)."""
    a, b = getattr(outputs, spec.node_a), getattr(outputs, spec.node_b)
    if spec.distance == 'mse':
        if spec.node_a in PIXEL_NODES:
            scale = pixel_scale(outputs)
            a, b = a / scale, b / scale
        error = squared_error_per_item(a, b)
        return error if a.dim() == 2 else soft_cap(error)   # (B, n) joints are not capped
    valid = outputs.points_unproj_valid if spec.node_a == 'points_unproj_3d' else None
    return soft_cap(chamfer_distance(a, b, bidirectional=spec.distance == 'chamfer',
                                     mask_a=valid))


def align_loss(outputs: TAGOutputs, graph: TAGGraph,
               alpha: dict[str, float]) -> dict[str, torch.Tensor]:
    """Weighted terms of the graph's enabled loops, keyed by term name, plus 'align' (their sum).

    A loop kind switched off in the graph drops exactly the terms its loops carry.
    """
    terms = {}
    for name in graph.active_terms():
        spec = ALIGN_TERM_BY_NAME[name]
        weight = alpha[spec.weight]
        if weight == 0:
            continue
        terms[name] = weight * align_term_per_item(spec, outputs).mean()
    terms['align'] = sum(terms.values()) if terms else outputs.rotation.new_zeros(())
    return terms
