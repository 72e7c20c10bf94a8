"""Intrinsics follow the image through letterboxing, resizing and cropping (known projections)."""
import numpy as np
import pytest

from inference_fixtures import pinhole
from robotag_ros.geometry.letterbox import crop, plan_letterbox
from robotag_ros.inference.preprocess import preprocess
from robotag_ros.model.preprocessing import ImagePreprocessing

PIXELS_IN_0_1 = ImagePreprocessing(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))

K_640 = pinhole(615.0, 612.0, 322.5, 238.0)   # a 640x480 camera
# Points in the camera frame (metres), spread over the field of view.
POINTS_CAM = np.array([[0.0, 0.0, 1.0], [0.30, -0.20, 1.2], [-0.35, 0.25, 1.5],
                       [0.10, 0.18, 0.8], [-0.20, -0.15, 0.9]])


def project(points_cam, K):
    uvw = points_cam @ K.T
    return uvw[:, :2] / uvw[:, 2:]


def _dot_image(height, width, centres_px, sigma=3.0):
    """Black image with a Gaussian blob centred on each continuous pixel position (the corner
    convention the preprocessing documents: pixel (i, j) covers [j, j+1) x [i, i+1))."""
    rows, cols = np.mgrid[0:height, 0:width] + 0.5
    intensity = np.zeros((height, width))
    for u, v in centres_px:
        intensity += np.exp(-((cols - u) ** 2 + (rows - v) ** 2) / (2 * sigma ** 2))
    return np.repeat((255 * np.clip(intensity, 0, 1)).round().astype(np.uint8)[..., None], 3, 2)


def _bright_centroids(network_image, expected_px, window=5):
    """Intensity-weighted centroid (network pixels) of the blob near each expected position."""
    gray = network_image[0].mean(0)
    centroids = []
    for u, v in np.round(expected_px).astype(int):
        v0, u0 = max(v - window, 0), max(u - window, 0)
        patch = gray[v0:v + window + 1, u0:u + window + 1]
        rows, cols = np.mgrid[v0:v0 + patch.shape[0], u0:u0 + patch.shape[1]]
        # Pixel centres sit at +0.5 in the continuous corner-origin convention.
        centroids.append([(patch * (cols + 0.5)).sum() / patch.sum(),
                          (patch * (rows + 0.5)).sum() / patch.sum()])
    return np.array(centroids)


@pytest.mark.parametrize('input_hw', [(256, 256), (192, 256), (96, 160), (320, 240)])
def test_letterboxed_intrinsics_project_where_the_pixels_went(input_hw):
    source_px = project(POINTS_CAM, K_640)
    image = _dot_image(480, 640, source_px)
    network_image, network_K, letterbox = preprocess(image, K_640, input_hw, PIXELS_IN_0_1)
    network_K = network_K[0].astype(np.float64)
    assert network_image.shape == (1, 3, *input_hw)
    # The projection through the adjusted K is the letterboxed source projection ...
    network_px = project(POINTS_CAM, network_K)
    np.testing.assert_allclose(network_px, letterbox.to_target_px(source_px), atol=1e-4)
    # ... maps back exactly ...
    np.testing.assert_allclose(letterbox.to_source_px(network_px), source_px, atol=1e-6)
    # ... and is where the image content actually landed (within resampling error).
    centroids = _bright_centroids(network_image, network_px)
    np.testing.assert_allclose(centroids, network_px, atol=0.1)
    # Uniform scale: no squash, so fx/fy keep the camera's ratio.
    assert network_K[0, 0] / network_K[1, 1] == pytest.approx(K_640[0, 0] / K_640[1, 1])


def test_letterbox_plan_pads_the_short_side_symmetrically():
    plan = plan_letterbox((480, 640), (256, 256))
    assert plan.scale == pytest.approx(0.4)
    assert (plan.pad_left_px, plan.pad_top_px) == (0, 32)
    portrait = plan_letterbox((640, 480), (256, 256))
    assert (portrait.pad_left_px, portrait.pad_top_px) == (32, 0)


def test_crop_then_letterbox_keeps_the_projection():
    box = (100, 60, 400, 300)   # x, y, w, h in the 640x480 image
    source_px = project(POINTS_CAM, K_640)
    inside = np.all((source_px > [box[0] + 8, box[1] + 8]) &
                    (source_px < [box[0] + box[2] - 8, box[1] + box[3] - 8]), axis=1)
    assert inside.sum() >= 3
    image = _dot_image(480, 640, source_px[inside])
    cropped, cropped_K = crop(image, K_640, box)
    assert cropped.shape == (300, 400, 3)
    np.testing.assert_allclose(project(POINTS_CAM, cropped_K), source_px - box[:2], atol=1e-9)
    network_image, network_K, letterbox = preprocess(cropped, cropped_K, (128, 128),
                                                     PIXELS_IN_0_1)
    network_px = project(POINTS_CAM[inside], network_K[0].astype(np.float64))
    np.testing.assert_allclose(_bright_centroids(network_image, network_px), network_px,
                               atol=0.1)
    # Back to the crop's pixels, then to the full image by adding the corner.
    np.testing.assert_allclose(letterbox.to_source_px(network_px) + box[:2], source_px[inside],
                               atol=1e-6)
    with pytest.raises(ValueError, match='not inside the 640x480 image'):
        crop(image, K_640, (600, 0, 100, 100))


def test_preprocess_refuses_non_rgb_uint8():
    with pytest.raises(ValueError, match='HxWx3 uint8 RGB'):
        preprocess(np.zeros((48, 64), np.uint8), K_640, (64, 64), PIXELS_IN_0_1)
    with pytest.raises(ValueError, match='HxWx3 uint8 RGB'):
        preprocess(np.zeros((48, 64, 3), np.float32), K_640, (64, 64), PIXELS_IN_0_1)
