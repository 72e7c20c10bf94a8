"""Robot descriptions as data: a robot YAML read, resolved and checked against its URDF.

A description names the URDF, the base frame, the joints to estimate (limits come from the URDF
unless the YAML's ``joint_limits`` overrides them), the keypoint links in a fixed order (DREAM's
names for the robots DREAM covers) and how densely to sample the visual meshes. Anything the YAML
names that the URDF lacks, a joint listed twice or both estimated and fixed, a non-finite number
and a URDF that is not well-formed are refused with an error that names the item, before any
model is built on a silently wrong robot.
"""
from __future__ import annotations

import contextlib
import io
import math
import os
import xml.etree.ElementTree as ElementTree
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
    """An estimated joint with its limits (radians for revolute, metres for prismatic), taken
    from the URDF or, where the robot YAML's ``joint_limits`` names the joint, from the YAML."""

    name: str
    lower: float
    upper: float
    limits_from: str = 'urdf'   # 'urdf' | 'yaml'


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
    # Pairs of keypoint indices that look alike (a gripper's two fingertips): the heatmap loss
    # takes whichever assignment of the pair's labels fits better.
    interchangeable_keypoints: list = field(default_factory=list)
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
    urdf = _load_urdf(urdf_path)

    where = f'{yaml_path.name} vs {urdf_path.name}'
    links = set(urdf.link_map)
    base_frame = str(data['base_frame'])
    if base_frame not in links:
        raise RobotDescriptionError(
            f"{where}: base_frame '{base_frame}' is not a link of the URDF")

    joint_names = _name_list(data['joints'], f'{yaml_path.name}: joints')
    if not joint_names:
        raise RobotDescriptionError(f'{where}: joints is empty')
    overrides = _limit_overrides(data.get('joint_limits'), joint_names, yaml_path.name)
    joints = [_joint_spec(urdf, name, where, overrides.get(name)) for name in joint_names]

    fixed = _fixed_positions(data.get('fixed_joint_positions'), yaml_path.name)
    for name in fixed:
        if name not in urdf.joint_map:
            raise RobotDescriptionError(
                f"{where}: fixed_joint_positions names joint '{name}', not in the URDF")
        if name in joint_names:
            raise RobotDescriptionError(
                f"{yaml_path.name}: joint '{name}' is both estimated (joints) and fixed "
                '(fixed_joint_positions); list it in one of them')

    keypoints = []
    for entry in data['keypoints']:
        if isinstance(entry, str):
            entry = {'name': entry, 'link': entry}
        keypoint = Keypoint(str(entry['name']), str(entry.get('link', entry['name'])),
                            _offset_m(entry.get('offset_m', (0.0, 0.0, 0.0)),
                                      f"{yaml_path.name}: keypoint '{entry['name']}' offset_m"))
        if keypoint.link not in links:
            raise RobotDescriptionError(
                f"{where}: keypoint '{keypoint.name}' is on link '{keypoint.link}', "
                'which is not in the URDF')
        keypoints.append(keypoint)
    if len({k.name for k in keypoints}) != len(keypoints):
        raise RobotDescriptionError(f'{where}: keypoint names must be unique')

    names = [k.name for k in keypoints]
    interchangeable = []
    for pair in data.get('interchangeable_keypoints') or []:
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2
                and all(name in names for name in pair) and pair[0] != pair[1]):
            raise RobotDescriptionError(
                f'{where}: interchangeable_keypoints entries must be pairs of two different '
                f'keypoint names, got {pair!r}')
        interchangeable.append((names.index(pair[0]), names.index(pair[1])))

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
        mesh_points_total=_whole(mesh_cfg.get('total', 2048), f'{yaml_path.name}: mesh_points '
                                 'total', minimum=1),
        mesh_points_seed=_whole(mesh_cfg.get('seed', 0), f'{yaml_path.name}: mesh_points seed'),
        dream=dict(data.get('dream') or {}), interchangeable_keypoints=interchangeable,
        urdf=urdf)


def _check_urdf_xml(urdf_path: Path) -> None:
    """Refuse a URDF that is not well-formed XML or whose joints do not name their links, with
    the place of the fault (yourdfpy would fail later with an AttributeError on None)."""
    try:
        root = ElementTree.parse(urdf_path).getroot()
    except ElementTree.ParseError as error:
        raise RobotDescriptionError(f'{urdf_path}: not well-formed XML ({error})') from None
    if root.tag != 'robot':
        raise RobotDescriptionError(f"{urdf_path}: the root element is <{root.tag}>, not <robot>")
    link_names = set()
    for link in root.findall('link'):
        if not link.get('name'):
            raise RobotDescriptionError(f'{urdf_path}: a <link> has no name')
        link_names.add(link.get('name'))
    for joint in root.findall('joint'):
        name = joint.get('name')
        if not name:
            raise RobotDescriptionError(f'{urdf_path}: a <joint> has no name')
        if not joint.get('type'):
            raise RobotDescriptionError(f"{urdf_path}: joint '{name}' has no type")
        for tag in ('parent', 'child'):
            element = joint.find(tag)
            if element is None or not element.get('link'):
                raise RobotDescriptionError(
                    f"{urdf_path}: joint '{name}' has no <{tag} link=...>")
            if element.get('link') not in link_names:
                raise RobotDescriptionError(f"{urdf_path}: joint '{name}' names {tag} link "
                                            f"'{element.get('link')}', which is not a <link>")
        limit = joint.find('limit')
        for bound in ('lower', 'upper'):
            text = limit.get(bound) if limit is not None else None
            if text is None:
                continue
            try:
                float(text)
            except ValueError:
                raise RobotDescriptionError(f"{urdf_path}: joint '{name}' has <limit "
                                            f'{bound}="{text}">, not a number') from None


def _load_urdf(urdf_path: Path) -> yourdfpy.URDF:
    _check_urdf_xml(urdf_path)
    # yourdfpy prints its parser's complaints to stdout; the error below says what matters.
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            return yourdfpy.URDF.load(str(urdf_path), load_meshes=False,
                                      build_scene_graph=False,
                                      filename_handler=mesh_filename_handler(urdf_path))
        except Exception as error:  # noqa: BLE001 - yourdfpy raises many types on bad URDF
            raise RobotDescriptionError(f'{urdf_path}: cannot parse URDF: '
                                        f'{type(error).__name__}: {error}') from error


def _name_list(value, where: str) -> list[str]:
    """A YAML list of names, each once."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RobotDescriptionError(f'{where}: expected a list of names, got {value!r}')
    repeated = sorted({name for name in value if value.count(name) > 1})
    if repeated:
        raise RobotDescriptionError(f'{where}: {repeated} listed more than once')
    return list(value)


def _finite(value, where: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise RobotDescriptionError(f'{where}: {value!r} is not a number') from None
    if not math.isfinite(number):
        raise RobotDescriptionError(f'{where}: {value!r} is not a finite number')
    return number


def _whole(value, where: str, minimum: int = 0) -> int:
    """A count or seed from the YAML: an integer, at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise RobotDescriptionError(f'{where}: expected an integer >= {minimum}, got {value!r}')
    return value


def _offset_m(value, where: str) -> tuple[float, float, float]:
    """A keypoint's [x, y, z] offset in its link's frame: three finite numbers (metres)."""
    if not isinstance(value, (list, tuple)) or len(value) != 3:
        raise RobotDescriptionError(f'{where}: expected [x, y, z] in metres, got {value!r}')
    return tuple(_finite(v, where) for v in value)


def _fixed_positions(value, yaml_name: str) -> dict[str, float]:
    if not value:
        return {}
    if not isinstance(value, dict):
        raise RobotDescriptionError(f'{yaml_name}: fixed_joint_positions must map joint names to '
                                    f'positions, got {value!r}')
    return {str(name): _finite(position, f"{yaml_name}: fixed_joint_positions '{name}'")
            for name, position in value.items()}


def _limit_overrides(value, joint_names: list[str],
                     yaml_name: str) -> dict[str, tuple[float, float]]:
    """The YAML's ``joint_limits: {joint: [lower, upper]}`` (estimated joints only)."""
    if not value:
        return {}
    if not isinstance(value, dict):
        raise RobotDescriptionError(f'{yaml_name}: joint_limits must map joint names to '
                                    f'[lower, upper], got {value!r}')
    overrides = {}
    for name, bounds in value.items():
        where = f"{yaml_name}: joint_limits '{name}'"
        if name not in joint_names:
            raise RobotDescriptionError(f'{where}: not one of the estimated joints {joint_names}')
        if not isinstance(bounds, (list, tuple)) or len(bounds) != 2:
            raise RobotDescriptionError(f'{where}: expected [lower, upper], got {bounds!r}')
        lower, upper = (_finite(v, where) for v in bounds)
        if lower >= upper:
            raise RobotDescriptionError(f'{where}: lower {lower} is not below upper {upper}')
        overrides[str(name)] = (lower, upper)
    return overrides


def _joint_spec(urdf: yourdfpy.URDF, name: str, where: str,
                override: Optional[tuple[float, float]] = None) -> JointSpec:
    joint = urdf.joint_map.get(name)
    if joint is None:
        raise RobotDescriptionError(f"{where}: joint '{name}' is not in the URDF")
    if joint.type not in ('revolute', 'prismatic', 'continuous'):
        raise RobotDescriptionError(
            f"{where}: joint '{name}' is {joint.type}; only movable joints can be estimated")
    if override is not None:
        return JointSpec(name, override[0], override[1], limits_from='yaml')
    if joint.type == 'continuous' or joint.limit is None \
            or joint.limit.lower is None or joint.limit.upper is None:
        return JointSpec(name, -np.pi, np.pi)
    lower, upper = float(joint.limit.lower), float(joint.limit.upper)
    if not (math.isfinite(lower) and math.isfinite(upper) and lower < upper):
        raise RobotDescriptionError(f"{where}: joint '{name}' has URDF limits [{lower}, "
                                    f'{upper}]; give usable ones in the YAML\'s joint_limits')
    return JointSpec(name, lower, upper)


def _mesh_visuals(link) -> list:
    return [v for v in link.visuals if v.geometry is not None and v.geometry.mesh is not None]
