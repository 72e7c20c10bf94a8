"""Online self-supervised fine-tuning beside the node: frame buffer, model store, safe swap."""
from robotag_ros.finetune.buffer import BufferDataset, BufferedFrame, FrameBuffer, FrameRecorder
from robotag_ros.finetune.model_store import ModelStore
from robotag_ros.finetune.swap import (CandidateWatcher, SwappableEstimator, accept_candidate,
                                       holdout_score, score_of_estimates)

__all__ = ['BufferDataset', 'BufferedFrame', 'FrameBuffer', 'FrameRecorder', 'ModelStore',
           'CandidateWatcher', 'SwappableEstimator', 'accept_candidate', 'holdout_score',
           'score_of_estimates']
