"""The RoboTAG network: backbones, heads, TAGModel.forward(image, K) -> TAGOutputs."""
from robotag_ros.model.config import (LossConfig, ModelConfig, load_model_config,
                                      model_config_from_dict, save_model_config)
from robotag_ros.model.outputs import TAGOutputs
from robotag_ros.model.prior_states import prior_states
from robotag_ros.model.tag_model import NETWORK_OUTPUT_NAMES, TAGModel, build_model
from robotag_ros.model.weights import PretrainedWeightsError

__all__ = ['LossConfig', 'ModelConfig', 'NETWORK_OUTPUT_NAMES', 'PretrainedWeightsError',
           'TAGModel', 'TAGOutputs', 'build_model', 'load_model_config', 'model_config_from_dict',
           'prior_states', 'save_model_config']
