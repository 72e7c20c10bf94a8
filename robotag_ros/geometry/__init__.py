"""Geometry shared by the model, losses, data and inference: rotations, SE(3), cameras, Chamfer;
letterbox.py: the image <-> network-input warps (letterbox, crops) with their intrinsics."""
from robotag_ros.geometry.camera import (crop_intrinsics, project_points, resize_intrinsics,
                                         unproject_depth, unproject_pixels)
from robotag_ros.geometry.chamfer import chamfer_distance
from robotag_ros.geometry.rotations import (geodesic_angle, matrix_to_rotation_6d,
                                            rotation_6d_to_matrix)
from robotag_ros.geometry.transforms import invert_transform, make_transform, transform_points

__all__ = [
    'chamfer_distance', 'crop_intrinsics', 'geodesic_angle', 'invert_transform', 'make_transform',
    'matrix_to_rotation_6d', 'project_points', 'resize_intrinsics', 'rotation_6d_to_matrix',
    'transform_points', 'unproject_depth', 'unproject_pixels',
]
