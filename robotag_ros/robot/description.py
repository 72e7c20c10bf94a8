"""Robot descriptions as data: a robot YAML read, resolved and checked against its URDF.

A description names the URDF, the base frame, the joints to estimate (limits come from the URDF),
the keypoint links in a fixed order (DREAM's names for the robots DREAM covers) and how densely to
sample the visual meshes. Anything the YAML names that the URDF lacks is refused with an error
that names the item, before any model is built on a silently wrong robot.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import yaml
import yourdfpy

# Bundled robot YAMLs live in config/robots (of the source tree, or of the ament share dir).
_SOURCE_CONFIG_DIR = Path(__file__).resolve().parents[2] / 'config' / 'robots'
_PYBULLET_DATA_SCHEME = 'pybullet_data://'


class RobotDescriptionError(ValueError):
    """A robot YAML that cannot be used: missing file, or an item its URDF does not have."""


@dataclass(frozen=True)
class Keypoint:
    """A named 3D keypoint: the origin of ``link`` plus an optional offset in that link's frame."""

    name: str
    link: str
    offset_m: tuple[float, float, float] = (0.0, 0.0, 0.0)


@dataclass(frozen=True)
class JointSpec:
    """An estimated joint with its URDF limits (radians for revolute, metres for prismatic)."""

    name: str
    lower: float
    upper: float


@dataclass
class RobotDescription:
    """Everything about one robot that the model, renderer and node need, URDF already checked."""

    name: str
    yaml_path: Path
    urdf_path: Path
    base_frame: str
    joints: list[JointSpec]
    fixed_joint_positions: dict[str, float]
    keypoints: list[Keypoint]
    mesh_links: list[str]
    mesh_points_total: int
    mesh_points_seed: int
    dream: dict = field(default_factory=dict)
    urdf: Optional[yourdfpy.URDF] = field(default=None, repr=False)

    @property
    def joint_names(self) -> list[str]:
        return [joint.name for joint in self.joints]

    @property
    def keypoint_names(self) -> list[str]:
        return [keypoint.name for keypoint in self.keypoints]


def bundled_robots() -> list[str]:
    """Names of the robot YAMLs that ship with the package."""
    return sorted(p.stem for p in _config_dir().glob('*.yaml'))


def _config_dir() -> Path:
    if _SOURCE_CONFIG_DIR.is_dir():
        return _SOURCE_CONFIG_DIR
    try:  # Installed by colcon/ament: config/ lives in the package's share directory.
        from ament_index_python.packages import get_package_share_directory
        return Path(get_package_share_directory('robotag_ros')) / 'config' / 'robots'
    except Exception:  # noqa: BLE001 - no ament index: only the source tree can hold the YAMLs
        return _SOURCE_CONFIG_DIR


def resolve_robot_yaml(robot: str | os.PathLike) -> Path:
    """A bundled robot name (``panda``) or a path to a robot YAML -> the YAML's path."""
    candidate = Path(robot)
    if candidate.suffix in ('.yaml', '.yml') or candidate.exists():
        if not candidate.is_file():
            raise RobotDescriptionError(f'robot YAML not found: {candidate}')
        return candidate.resolve()
    bundled = _config_dir() / f'{robot}.yaml'
    if not bundled.is_file():
        raise RobotDescriptionError(
            f"unknown robot '{robot}': bundled robots are {bundled_robots()}; "
            'or pass the path to a robot YAML')
    return bundled


def _resolve_urdf(urdf_field: str, yaml_dir: Path) -> Path:
    if urdf_field.startswith(_PYBULLET_DATA_SCHEME):
        import pybullet_data  # ships the Panda and iiwa URDFs with their meshes
        path = Path(pybullet_data.getDataPath()) / urdf_field[len(_PYBULLET_DATA_SCHEME):]
    else:
        path = Path(os.path.expandvars(urdf_field)).expanduser()
        if not path.is_absolute():
            path = yaml_dir / path
    if not path.is_file():
        raise RobotDescriptionError(f'URDF not found: {path} (from urdf: {urdf_field})')
    return path


def mesh_filename_handler(urdf_path: Path):
    """Resolve URDF mesh references: ``package://pkg/...`` via ament, else relative to the URDF.

    pybullet_data writes ``package://meshes/...`` meaning "next to the URDF"; a real ROS
    description writes ``package://franka_description/meshes/...``. Both must resolve.
    """
    urdf_dir = urdf_path.parent

    def handler(filename: str) -> str:
        if not filename.startswith('package://'):
            path = Path(filename)
            return str(path if path.is_absolute() else urdf_dir / path)
        relative = filename[len('package://'):]
        package, _, rest = relative.partition('/')
        candidates = [urdf_dir / relative, urdf_dir / rest]
        try:
            from ament_index_python.packages import get_package_share_directory
            candidates.insert(0, Path(get_package_share_directory(package)) / rest)
        except Exception:  # noqa: BLE001 - no ament index or no such package: try the URDF dir
            pass
        for candidate in candidates:
            if candidate.is_file():
                return str(candidate)
        return str(candidates[-1])

    return handler


def _read_yaml(yaml_path: Path) -> dict:
    try:
        with open(yaml_path) as stream:
            data = yaml.safe_load(stream)
    except yaml.YAMLError as error:
        raise RobotDescriptionError(f'{yaml_path}: not valid YAML: {error}') from error
    if not isinstance(data, dict):
        raise RobotDescriptionError(f'{yaml_path}: expected a mapping at the top level')
    for key in ('name', 'urdf', 'base_frame', 'joints', 'keypoints'):
        if key not in data:
            raise RobotDescriptionError(f"{yaml_path}: missing required key '{key}'")
    return data


def load_description(robot: str | os.PathLike) -> RobotDescription:
    """Read a robot YAML (bundled name or path), load its URDF and check one against the other."""
    yaml_path = resolve_robot_yaml(robot)
    data = _read_yaml(yaml_path)
    urdf_path = _resolve_urdf(str(data['urdf']), yaml_path.parent)
    try:
        urdf = yourdfpy.URDF.load(str(urdf_path), load_meshes=False, build_scene_graph=False,
                                  filename_handler=mesh_filename_handler(urdf_path))
    except Exception as error:  # noqa: BLE001 - yourdfpy raises many types on bad XML
        raise RobotDescriptionError(f'{urdf_path}: cannot parse URDF: {error}') from error

    where = f'{yaml_path.name} vs {urdf_path.name}'
    links = set(urdf.link_map)
    base_frame = str(data['base_frame'])
    if base_frame not in links:
        raise RobotDescriptionError(
            f"{where}: base_frame '{base_frame}' is not a link of the URDF")

    joints = [_joint_spec(urdf, str(name), where) for name in data['joints']]
    if not joints:
        raise RobotDescriptionError(f'{where}: joints is empty')

    fixed = {str(k): float(v) for k, v in (data.get('fixed_joint_positions') or {}).items()}
    for name in fixed:
        if name not in urdf.joint_map:
            raise RobotDescriptionError(
                f"{where}: fixed_joint_positions names joint '{name}', not in the URDF")

    keypoints = []
    for entry in data['keypoints']:
        if isinstance(entry, str):
            entry = {'name': entry, 'link': entry}
        keypoint = Keypoint(str(entry['name']), str(entry.get('link', entry['name'])),
                            tuple(float(v) for v in entry.get('offset_m', (0.0, 0.0, 0.0))))
        if keypoint.link not in links:
            raise RobotDescriptionError(
                f"{where}: keypoint '{keypoint.name}' is on link '{keypoint.link}', "
                'which is not in the URDF')
        keypoints.append(keypoint)
    if len({k.name for k in keypoints}) != len(keypoints):
        raise RobotDescriptionError(f'{where}: keypoint names must be unique')

    mesh_cfg = data.get('mesh_points') or {}
    mesh_links = [str(link) for link in mesh_cfg.get('links', [])] or [
        name for name, link in urdf.link_map.items() if _mesh_visuals(link)]
    for link in mesh_links:
        if link not in links:
            raise RobotDescriptionError(f"{where}: mesh link '{link}' is not in the URDF")
        visuals = _mesh_visuals(urdf.link_map[link])
        if not visuals:
            raise RobotDescriptionError(f"{where}: mesh link '{link}' has no visual mesh")
        for visual in visuals:
            mesh_file = Path(mesh_filename_handler(urdf_path)(visual.geometry.mesh.filename))
            if not mesh_file.is_file():
                raise RobotDescriptionError(
                    f"{where}: mesh of link '{link}' not found: {mesh_file}")

    return RobotDescription(
        name=str(data['name']), yaml_path=yaml_path, urdf_path=urdf_path, base_frame=base_frame,
        joints=joints, fixed_joint_positions=fixed, keypoints=keypoints, mesh_links=mesh_links,
        mesh_points_total=int(mesh_cfg.get('total', 2048)),
        mesh_points_seed=int(mesh_cfg.get('seed', 0)), dream=dict(data.get('dream') or {}),
        urdf=urdf)


def _joint_spec(urdf: yourdfpy.URDF, name: str, where: str) -> JointSpec:
    joint = urdf.joint_map.get(name)
    if joint is None:
        raise RobotDescriptionError(f"{where}: joint '{name}' is not in the URDF")
    if joint.type not in ('revolute', 'prismatic', 'continuous'):
        raise RobotDescriptionError(
            f"{where}: joint '{name}' is {joint.type}; only movable joints can be estimated")
    if joint.type == 'continuous' or joint.limit is None:
        return JointSpec(name, -np.pi, np.pi)
    return JointSpec(name, float(joint.limit.lower), float(joint.limit.upper))


def _mesh_visuals(link) -> list:
    return [v for v in link.visuals if v.geometry is not None and v.geometry.mesh is not None]
