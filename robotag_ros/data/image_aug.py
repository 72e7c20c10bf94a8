"""Photometric image augmentation on uint8 RGB images: colour jitter, blur, lower resolution,
noise.

Used by the synthetic renderer (post-render corruption) and by the DREAM reader (training
augmentation). None of these changes geometry, so labels stay valid.
"""
from __future__ import annotations

import cv2
import numpy as np


def colour_jitter(image: np.ndarray, rng: np.random.Generator, brightness=(1.0, 1.0),
                  contrast=(1.0, 1.0), saturation=(1.0, 1.0),
                  hue_shift_deg=(0.0, 0.0)) -> np.ndarray:
    """Random brightness/contrast/saturation factors and hue shift (degrees), uint8 in and out."""
    out = image.astype(np.float32)
    out *= rng.uniform(*brightness)
    mean = float(out.mean())
    out = (out - mean) * rng.uniform(*contrast) + mean
    out = np.clip(out, 0.0, 255.0)
    sat_factor, hue_shift = rng.uniform(*saturation), rng.uniform(*hue_shift_deg)
    if sat_factor != 1.0 or hue_shift != 0.0:
        hsv = cv2.cvtColor(out.astype(np.uint8), cv2.COLOR_RGB2HSV).astype(np.float32)
        hsv[..., 0] = (hsv[..., 0] + hue_shift / 2.0) % 180.0  # OpenCV hue is degrees / 2
        hsv[..., 1] = np.clip(hsv[..., 1] * sat_factor, 0.0, 255.0)
        return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)
    return out.astype(np.uint8)


def gaussian_blur(image: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian blur with standard deviation `sigma_px` pixels."""
    if sigma_px <= 0.0:
        return image
    return cv2.GaussianBlur(image, (0, 0), sigmaX=float(sigma_px))


def lower_resolution(image: np.ndarray, scale: float) -> np.ndarray:
    """The image shrunk by ``scale`` (area averaging) and enlarged back to its size: the detail
    a camera ``1 / scale`` times as far would resolve. Pixel centres stay aligned."""
    if scale >= 1.0:
        return image
    height, width = image.shape[:2]
    small = cv2.resize(image, (max(1, round(width * scale)), max(1, round(height * scale))),
                       interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def gaussian_noise(image: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Additive Gaussian noise, `sigma` as a fraction of the 0-255 range (saturating)."""
    if sigma <= 0.0:
        return image
    # OpenCV's generator is ~5x faster than numpy's here; seeding it from `rng` keeps frames
    # reproducible (its state is per thread and reset on every call).
    # One channel: a scalar sigma given to a 3-channel array would only reach its first channel.
    noise = np.empty((image.shape[0], image.size // image.shape[0]), np.int16)
    cv2.setRNGSeed(int(rng.integers(0, 2**31 - 1)))
    cv2.randn(noise, 0.0, sigma * 255.0)
    noise = noise.reshape(image.shape)
    return np.clip(image.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def augment_photometric(image: np.ndarray, rng: np.random.Generator, config) -> np.ndarray:
    """Apply the corruptions of an ImageAugConfig-like object (fields as in dr_config)."""
    image = colour_jitter(image, rng, config.brightness, config.contrast, config.saturation,
                          config.hue_shift_deg)
    if rng.uniform() < config.blur_prob:
        image = gaussian_blur(image, rng.uniform(*config.blur_sigma_px))
    if rng.uniform() < config.noise_prob:
        image = gaussian_noise(image, rng, rng.uniform(*config.noise_sigma))
    return image
