"""RoboTAG's losses: L_align (eq. 19) per enabled loop, L_supervised (eq. 20), L_tot (eq. 18)."""
from robotag_ros.losses.align import align_loss, align_term_per_item
from robotag_ros.losses.supervised import supervised_loss
from robotag_ros.losses.total import TAGLoss

__all__ = ['TAGLoss', 'align_loss', 'align_term_per_item', 'supervised_loss']
