"""Sample overlays for TensorBoard: labelled vs predicted skeletons over the training images."""
from __future__ import annotations

import numpy as np
import torch

from robotag_ros.geometry import project_points
from robotag_ros.visualization import draw_skeleton

LABEL_RGB = (40, 220, 40)       # ground truth: green
PREDICTION_RGB = (255, 60, 200)  # forward kinematics of p² placed with (R, T), projected


@torch.no_grad()
def overlay_grid(batch: dict, outputs, robot, max_images: int = 4) -> np.ndarray:
    """A horizontal strip (H, n*W, 3) uint8: each image with its label and prediction drawn."""
    count = min(max_images, batch['image'].shape[0])
    predicted = project_points(outputs.keypoints_3d_fk_2d[:count].float(),
                               batch['K'][:count].float()).cpu().numpy()
    tiles = []
    for index in range(count):
        image = (batch['image'][index].permute(1, 2, 0).float().cpu().numpy() * 255)
        canvas = np.ascontiguousarray(image.clip(0, 255).astype(np.uint8))
        if bool(batch.get('has_keypoints_2d', torch.zeros(count, dtype=torch.bool))[index]):
            draw_skeleton(canvas, batch['keypoints_2d'][index].cpu().numpy(),
                          line_rgb=LABEL_RGB, point_rgb=LABEL_RGB)
        draw_skeleton(canvas, predicted[index], line_rgb=PREDICTION_RGB,
                      point_rgb=PREDICTION_RGB)
        tiles.append(canvas)
    return np.concatenate(tiles, axis=1)
