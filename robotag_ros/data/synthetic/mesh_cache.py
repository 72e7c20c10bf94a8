"""Convert a robot's visual meshes to STL files in a cache folder keyed by their content hash.

MuJoCo 4.0 drops faces from OBJ files that hold several objects (Panda link5 kept 250 of 18,327
faces), so every visual mesh goes through trimesh to a single-object binary STL first. The file
name is the hash of the vertices and faces, so a cache shared by workers never goes stale and a
file is written once (atomically: tmp + rename, safe when workers race).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import trimesh

from robotag_ros.atomic_io import atomic_write_bytes
from robotag_ros.cache_dir import cache_dir


def default_cache_dir() -> Path:
    return cache_dir('meshes')


def mesh_hash(mesh: trimesh.Trimesh) -> str:
    """Content hash of a mesh's geometry (vertices in metres as float32, faces)."""
    digest = hashlib.sha1()
    digest.update(np.ascontiguousarray(mesh.vertices, dtype=np.float32).tobytes())
    digest.update(np.ascontiguousarray(mesh.faces, dtype=np.int64).tobytes())
    return digest.hexdigest()[:20]


def mesh_to_stl(mesh: trimesh.Trimesh, cache_dir: str | Path | None = None) -> Path:
    """Return the path of an STL holding `mesh`, writing it into the cache if it is not there."""
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f'{mesh_hash(mesh)}.stl'
    if path.exists():
        return path
    if len(mesh.faces) == 0:
        raise ValueError(f'mesh for {path.name} has no faces')
    return atomic_write_bytes(path, trimesh.exchange.stl.export_stl(mesh))
