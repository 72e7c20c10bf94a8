"""The fit's settings and what reads its residual, as one config an artifact can carry.

The residual's size depends on the model (how sharp its heatmaps are, its input size), so the
thresholds that judge it travel with the weights: the sidecar's ``fit`` section (keys it leaves
out take these defaults), then the caller's ``fit_overrides``, each merged by the project's one
config rule (:mod:`robotag_ros.config_merge`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional

from robotag_ros.config_merge import merge_into
from robotag_ros.inference.decode import ConsistencyScales
from robotag_ros.inference.loop_closing import LoopClosingConfig


@dataclass(frozen=True)
class FitSettings:
    """The loop closing itself and the thresholds on its residual (pixels unless named)."""

    loop_closing: LoopClosingConfig = field(default_factory=LoopClosingConfig)
    consistency_scales: ConsistencyScales = field(default_factory=ConsistencyScales)
    # next_box: a frame whose fit is this far off is not tracked (the next one searches anew).
    track_max_residual_px: float = 25.0
    # The fine-tuning swap gate serves a candidate only if its held-out score (minus the mean
    # fit residual, pixels) beats the current model's by more than this.
    swap_min_improvement: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def fit_settings(from_sidecar: Optional[dict] = None, overrides: Optional[dict] = None,
                 sidecar_name: str = 'sidecar') -> FitSettings:
    """Defaults, then the sidecar's ``fit`` section, then ``overrides`` (unknown keys: a
    one-line ConfigError naming where, and the known keys)."""
    settings = merge_into(FitSettings(), from_sidecar or {}, f'{sidecar_name}: fit')
    return merge_into(settings, overrides or {}, 'fit_overrides')
