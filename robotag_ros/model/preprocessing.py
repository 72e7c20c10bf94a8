"""How a network wants its pixels: channel order, normalisation and letterbox padding.

An artifact's sidecar holds one :class:`ImagePreprocessing`; the estimator and the exporter's
parity frames apply it to uint8 images (:meth:`ImagePreprocessing.to_network_input`), and a
model loaded from the artifact trains with the same statistics. The exported graph takes the
normalised image, so no runtime normalises twice or with other numbers.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

COLOR_ORDERS = ('RGB', 'BGR')
# What the transformers backbones' pretrained weights expect.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# The EfficientNet-Lite weights were trained on images scaled to [-1, 1] (TF's mean 127 / std
# 128), not with ImageNet's mean/std: the stem's BatchNorm statistics match [-1, 1] inputs.
LITE_MEAN = (0.5, 0.5, 0.5)
LITE_STD = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class ImagePreprocessing:
    """uint8 pixels -> network input: channels in ``color_order``, then (pixel / 255 - mean) /
    std per channel. ``pad_value``: the uint8 value of the letterbox's (and the crop's) border."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    color_order: str = 'RGB'
    pad_value: int = 0

    def __post_init__(self):
        object.__setattr__(self, 'mean', tuple(float(v) for v in self.mean))
        object.__setattr__(self, 'std', tuple(float(v) for v in self.std))
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ValueError(f'mean and std need 3 values (one per channel), got {self.mean} '
                             f'and {self.std}')
        if not all(np.isfinite(self.mean)) or not all(s > 0 for s in self.std):
            raise ValueError(f'mean must be finite and std positive, got {self.mean} and '
                             f'{self.std}')
        if self.color_order not in COLOR_ORDERS:
            raise ValueError(f'color_order must be one of {COLOR_ORDERS}, not '
                             f'{self.color_order!r}')
        if not (isinstance(self.pad_value, int) and 0 <= self.pad_value <= 255):
            raise ValueError(f'pad_value must be an integer 0..255, not {self.pad_value!r}')

    def to_dict(self) -> dict:
        return {key: list(value) if isinstance(value, tuple) else value
                for key, value in asdict(self).items()}

    def to_network_input(self, image_rgb: np.ndarray) -> np.ndarray:
        """HxWx3 uint8 RGB (already letterboxed) -> 1x3xHxW float32, normalised."""
        if self.color_order == 'BGR':
            image_rgb = image_rgb[..., ::-1]
        pixels = np.ascontiguousarray(image_rgb.transpose(2, 0, 1)[None], dtype=np.float32)
        mean = np.asarray(self.mean, np.float32)[:, None, None]
        std = np.asarray(self.std, np.float32)[:, None, None]
        # The same float32 operations, in the same order, as the model's own normalise().
        return (pixels / np.float32(255.0) - mean) / std


def backbone_preprocessing(backbone_2d: str) -> ImagePreprocessing:
    """What a 2D backbone's pretrained weights expect: a new model trains with it, and an
    artifact whose sidecar predates the ``preprocessing`` section ran with it."""
    if backbone_2d.startswith('efficientnet'):
        return ImagePreprocessing(LITE_MEAN, LITE_STD)
    return ImagePreprocessing(IMAGENET_MEAN, IMAGENET_STD)
