"""L_tot = L_align + L_supervised (eq. 18), built from the model config's enabled loops."""
from __future__ import annotations

import torch

from robotag_ros.losses.align import align_loss
from robotag_ros.losses.supervised import supervised_loss
from robotag_ros.model.config import ModelConfig
from robotag_ros.model.outputs import TAGOutputs
from robotag_ros.robot import RobotModel
from robotag_ros.tag.graph import TAGGraph


class TAGLoss:
    """Callable ``(outputs, batch) -> {term: scalar}`` with 'align', 'supervised' and 'total'.

    Term names are stable (TensorBoard tags): eq. (19) terms as in
    ``robotag_ros.tag.graph.ALIGN_TERMS``, eq. (20) terms ``sup_*``, extra terms ``extra_*``.
    ``use_supervised=False`` gives the paper's second (self-supervised) stage.
    """

    def __init__(self, robot: RobotModel, config: ModelConfig, use_supervised: bool = True):
        self.robot = robot
        self.config = config
        self.graph = TAGGraph(config.loops_off)
        self.use_supervised = use_supervised

    def __call__(self, outputs: TAGOutputs, batch: dict | None = None) -> dict[str, torch.Tensor]:
        terms = align_loss(outputs, self.graph, self.config.loss.alpha)
        if self.use_supervised and batch is not None:
            terms.update(supervised_loss(outputs, batch, self.robot, self.config.loss.beta,
                                         self.config.loss.extra))
        else:
            terms['supervised'] = outputs.rotation.new_zeros(())
        terms['total'] = terms['align'] + terms['supervised']
        return terms
