"""L_tot = L_align + L_supervised (eq. 18), built from the model config's enabled loops."""
from __future__ import annotations

from typing import Optional

import torch

from robotag_ros.losses.align import align_loss
from robotag_ros.losses.supervised import supervised_loss
from robotag_ros.model.config import ModelConfig
from robotag_ros.model.outputs import TAGOutputs
from robotag_ros.robot import RobotModel
from robotag_ros.tag.graph import TAGGraph


class TAGLoss:
    """Callable ``(outputs, batch, supervised=True) -> {term: scalar}`` with 'align',
    'supervised' and 'total'.

    ``graph`` decides which loops (so which eq. (19) terms) are on: pass the model's
    ``TAGModel.graph``. ``robot`` gives the labelled point cloud pts_fk^gt of eq. (20)'s β6 and
    β7 terms; without it those two terms cannot be formed and asking for them is an error.
    Term names are stable (TensorBoard tags): eq. (19) terms as in
    ``robotag_ros.tag.graph.ALIGN_TERMS``, eq. (20) terms ``sup_*``, extra terms ``extra_*``.
    ``supervised=False`` gives the paper's second (self-supervised) stage.
    """

    def __init__(self, graph: TAGGraph, config: ModelConfig, robot: Optional[RobotModel] = None):
        if not isinstance(graph, TAGGraph):
            raise TypeError(f'TAGLoss wants the TAGGraph (model.graph) first, got '
                            f'{type(graph).__name__}')
        self.graph = graph
        self.config = config
        self.robot = robot

    def __call__(self, outputs: TAGOutputs, batch: Optional[dict] = None,
                 supervised: bool = True) -> dict[str, torch.Tensor]:
        terms = align_loss(outputs, self.graph, self.config.loss.alpha)
        if supervised and batch is not None:
            terms.update(supervised_loss(outputs, batch, self.robot, self.config.loss.beta,
                                         self.config.loss.extra,
                                         self.config.view_azimuth_bins,
                                         self.config.keypoint_depth_head))
        else:
            terms['supervised'] = outputs.rotation.new_zeros(())
        terms['total'] = terms['align'] + terms['supervised']
        return terms
