"""Visual meshes of a robot's links, and the fixed point set sampled once on their surfaces."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import trimesh

from robotag_ros.robot.description import (RobotDescription, RobotDescriptionError,
                                           mesh_filename_handler)

# Every link keeps some points, however small its area, so no link vanishes from the cloud.
MIN_POINTS_PER_LINK = 16
DEFAULT_PART_RGBA = (0.8, 0.8, 0.8, 1.0)


def _material_parts(path: Path, transform: np.ndarray, scale, fallback_rgba) -> list:
    """(mesh, rgba) per material of one mesh file, in the link frame (scale, then transform)."""
    loaded = trimesh.load(str(path), process=False)
    meshes = loaded.dump() if isinstance(loaded, trimesh.Scene) else [loaded]
    parts = []
    for mesh in meshes:
        if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
            continue
        rgba = fallback_rgba
        material = getattr(mesh.visual, 'material', None)
        main_color = getattr(material, 'main_color', None)
        if main_color is not None:
            rgba = tuple(float(c) / 255.0 for c in np.asarray(main_color, dtype=float)[:4])
        elif getattr(mesh.visual, 'kind', None) == 'face':
            rgba = tuple(float(c) / 255.0 for c in mesh.visual.face_colors[0])
        mesh = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False)
        if scale is not None:
            mesh.apply_scale(np.broadcast_to(np.asarray(scale, dtype=float), (3,)))
        mesh.apply_transform(transform)
        parts.append((mesh, rgba))
    return parts


@dataclass
class LinkMesh:
    """One link's visual geometry merged into one mesh, in the link frame, metres.

    ``sources`` keeps, per visual, (mesh file, scale, T_link_visual, URDF rgba or None): what
    ``material_parts`` reads again, on demand, when a renderer wants the robot's own colours.
    """

    link: str
    mesh: trimesh.Trimesh
    color: Optional[tuple[float, float, float, float]] = None
    sources: list = field(default_factory=list)


def material_parts(link_mesh: LinkMesh) -> list:
    """The link's faces split by material: (mesh in the link frame, rgba in [0, 1]) per part.

    Colours come from the mesh file's materials (an OBJ's MTL), else the URDF's, else a light
    grey. Loaded on demand: only the renderer's own-appearance mode needs them.
    """
    parts = []
    for path, scale, transform, urdf_rgba in link_mesh.sources:
        parts += _material_parts(path, transform, scale, urdf_rgba or DEFAULT_PART_RGBA)
    return parts


def load_link_meshes(description: RobotDescription) -> list[LinkMesh]:
    """Load and merge each mesh link's visuals (origin and scale applied) into the link frame."""
    handler = mesh_filename_handler(description.urdf_path)
    link_meshes = []
    for link_name in description.mesh_links:
        parts, color, sources = [], None, []
        for visual in description.urdf.link_map[link_name].visuals:
            if visual.geometry is None or visual.geometry.mesh is None:
                continue
            path = Path(handler(visual.geometry.mesh.filename))
            try:
                # force='mesh' merges multi-object OBJ files (the Panda's) into one Trimesh.
                mesh = trimesh.load(str(path), force='mesh', process=False)
            except Exception as error:  # noqa: BLE001 - trimesh raises many types on bad files
                raise RobotDescriptionError(f"mesh of link '{link_name}' unreadable: {path}: "
                                            f'{error}') from error
            if len(mesh.faces) == 0:
                raise RobotDescriptionError(f"mesh of link '{link_name}' has no faces: {path}")
            scale = visual.geometry.mesh.scale
            if scale is not None:
                mesh.apply_scale(np.broadcast_to(np.asarray(scale, dtype=float), (3,)))
            if visual.origin is not None:
                mesh.apply_transform(np.asarray(visual.origin, dtype=float))
            parts.append(mesh)
            urdf_rgba = None
            if visual.material is not None and visual.material.color is not None:
                urdf_rgba = tuple(float(c) for c in visual.material.color.rgba)
                color = urdf_rgba if color is None else color
            transform = (np.eye(4) if visual.origin is None
                         else np.asarray(visual.origin, dtype=float))
            sources.append((path, scale, transform, urdf_rgba))
        merged = parts[0] if len(parts) == 1 else trimesh.util.concatenate(parts)
        link_meshes.append(LinkMesh(link_name, merged, color, sources))
    return link_meshes


def sample_link_points(link_meshes: list[LinkMesh], total: int,
                       seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sample ``total`` surface points across links, proportional to area (seeded).

    Returns the points in their link's frame (N, 3) and each point's index into ``link_meshes``
    (N,). Sampled once per robot; forward kinematics then carries them every frame.
    """
    if total < MIN_POINTS_PER_LINK * len(link_meshes):
        raise RobotDescriptionError(
            f'mesh_points.total={total} is too small for {len(link_meshes)} links '
            f'(at least {MIN_POINTS_PER_LINK} each)')
    areas = np.array([lm.mesh.area for lm in link_meshes], dtype=float)
    spare = total - MIN_POINTS_PER_LINK * len(link_meshes)
    counts = MIN_POINTS_PER_LINK + np.floor(spare * areas / areas.sum()).astype(int)
    counts[np.argmax(areas)] += total - counts.sum()  # round-off goes to the largest link
    points, link_index = [], []
    for index, (link_mesh, count) in enumerate(zip(link_meshes, counts)):
        sampled, _ = trimesh.sample.sample_surface(link_mesh.mesh, int(count), seed=seed + index)
        points.append(np.asarray(sampled, dtype=np.float32))
        link_index.append(np.full(int(count), index, dtype=np.int64))
    return np.concatenate(points), np.concatenate(link_index)
