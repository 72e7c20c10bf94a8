"""Offscreen MuJoCo renderer of a robot posed by our own forward kinematics.

Why MuJoCo: its EGL offscreen renderer runs on this machine's CPU through Mesa llvmpipe and
unchanged on users' GPUs; PyBullet's TinyRenderer (no GL) is 2-3x slower for rgb+depth+seg. Two
GL passes per frame: the shaded rgb, and one id-colour pass whose colour buffer is the
segmentation and whose depth buffer is the depth (~23 ms both at 400x400 on one llvmpipe core).
MuJoCo does no kinematics here: every visual mesh is a *mocap* body whose pose we set from
``robot.link_poses`` (the same FK that makes the labels), so labels and pixels cannot disagree.
Distractors are mocap bodies too; the camera is a mocap body with explicit intrinsics
(``cam_intrinsic`` + ``cam_sensorsize``, one sensor unit per pixel).

Frames: the MuJoCo world frame is the robot base frame. Our camera frame is the optical one
(x right, y down, z forward); MuJoCo's camera looks along -z with y up, i.e. R_optical_mujococam =
diag(1, -1, -1). Pixel convention: robotag_ros.geometry's (pixel (r, c) covers u in [c, c + 1),
v in [r, r + 1); its centre is at (c + 0.5, r + 0.5)).
"""
from __future__ import annotations

import os
import sys

# Headless EGL unless the user chose a backend. It must be set before mujoco is imported; when
# something imported mujoco earlier (pytorch_kinematics does), _use_egl_if_unchosen() catches up.
# EGL is a Linux backend (mujoco refuses MUJOCO_GL=egl on macOS/Windows): elsewhere its default.
_USER_CHOSE_GL = 'MUJOCO_GL' in os.environ or not sys.platform.startswith('linux')
if not _USER_CHOSE_GL:
    os.environ['MUJOCO_GL'] = 'egl'

from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from robotag_ros.data.synthetic.mesh_cache import mesh_to_stl  # noqa: E402
from robotag_ros.robot.meshes import material_parts  # noqa: E402

# MuJoCo camera axes (x right, y up, z backward) expressed in the optical frame and back.
R_OPTICAL_MJCAM = np.diag([1.0, -1.0, -1.0])
DISTRACTOR_SHAPES = ('box', 'sphere', 'cylinder', 'capsule', 'ellipsoid')
_SHAPE_TYPE = {
    'box': mujoco.mjtGeom.mjGEOM_BOX, 'sphere': mujoco.mjtGeom.mjGEOM_SPHERE,
    'cylinder': mujoco.mjtGeom.mjGEOM_CYLINDER, 'capsule': mujoco.mjtGeom.mjGEOM_CAPSULE,
    'ellipsoid': mujoco.mjtGeom.mjGEOM_ELLIPSOID,
}
_HIDDEN_POS = np.array([0.0, 0.0, -1.0e4])  # far outside zfar: an unused slot draws nothing
# Side of the square texture each scenery slot owns (rewritten per frame: cheap to upload).
SCENERY_TEXTURE_PX = 128


@dataclass
class Distractor:
    """One distractor object: shape name, half sizes (metres), pose in the base frame, colour."""

    shape: str
    half_size_m: np.ndarray
    T_base_object: np.ndarray
    rgba: np.ndarray


@dataclass
class SceneryBox:
    """A box of the room (floor, table, wall): half sizes (metres), pose in the base frame, a
    colour, and an optional (T, T, 3) uint8 texture tiled ``texrepeat`` times across it."""

    half_size_m: np.ndarray
    T_base_object: np.ndarray
    rgba: np.ndarray
    texture: np.ndarray | None = None
    texrepeat: float = 1.0


@dataclass
class Light:
    """A light: position and direction in the base frame (metres), colours in [0, 1]."""

    pos_m: np.ndarray
    direction: np.ndarray
    diffuse: np.ndarray
    ambient: np.ndarray
    specular: np.ndarray
    directional: bool = False
    cast_shadow: bool = False


@dataclass
class SceneState:
    """Everything that changes per frame.

    link_poses: link name -> T_base_link (4, 4) metres; T_base_cam: optical camera pose in the base
    frame; K: (3, 3) pixels; robot_rgba: (G, 4) per robot geom, i.e. per material part (None
    keeps the last colours); scenery: the room's boxes (empty: the robot floats).
    """

    link_poses: dict
    T_base_cam: np.ndarray
    K: np.ndarray
    robot_rgba: np.ndarray | None = None
    robot_specular: np.ndarray | None = None
    robot_shininess: np.ndarray | None = None
    distractors: list = field(default_factory=list)
    lights: list = field(default_factory=list)
    headlight_ambient: float = 0.1
    scenery: list = field(default_factory=list)


@dataclass
class RenderOutput:
    """Rendered buffers: rgb (H, W, 3) uint8; robot_mask and drawn_mask (H, W) bool (drawn = any
    geometry, robot or distractor); depth_m (H, W) float32 planar depth in metres, 0 = nothing;
    segmentation (H, W) int model geom id, -1 where nothing is drawn."""

    rgb: np.ndarray
    robot_mask: np.ndarray
    drawn_mask: np.ndarray
    depth_m: np.ndarray | None
    segmentation: np.ndarray | None = None  # (H, W) model geom id per pixel, -1 = none


def _use_egl_if_unchosen() -> None:
    """Switch MuJoCo to EGL when it was imported before MUJOCO_GL was set and nobody chose."""
    if _USER_CHOSE_GL:
        return
    from mujoco.rendering.classic import gl_context
    if getattr(gl_context, '_MUJOCO_GL', 'egl') == '':
        from mujoco.egl import GLContext
        gl_context.GLContext = GLContext


def _quat_wxyz(rotation: np.ndarray) -> np.ndarray:
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, np.ascontiguousarray(rotation, dtype=np.float64).reshape(9))
    return quat


def build_scene_xml(mesh_files: list, height: int, width: int, max_distractors: int,
                    max_lights: int, max_scenery: int = 0) -> str:
    """MJCF text: one mocap body per robot mesh, distractor, scenery and light slots, a camera."""
    assets = ''.join(f'<mesh name="robot_mesh_{i}" file="{path}" inertia="shell"/>'
                     for i, path in enumerate(mesh_files))
    materials = ''.join(f'<material name="robot_mat_{i}" rgba="0.8 0.8 0.8 1"/>'
                        for i in range(len(mesh_files)))
    # Each scenery slot owns a texture and a material: textures are rewritten per frame.
    size = SCENERY_TEXTURE_PX
    materials += ''.join(
        f'<texture name="scenery_tex_{i}" type="2d" builtin="flat" width="{size}" '
        f'height="{size}" rgb1="1 1 1" rgb2="1 1 1"/>'
        f'<material name="scenery_mat_{i}" texture="scenery_tex_{i}" texuniform="true" '
        f'texrepeat="1 1" specular="0.1" shininess="0.1"/>' for i in range(max_scenery))
    scenery_bodies = ''.join(
        f'<body name="scenery_body_{i}" mocap="true" pos="{_HIDDEN_POS[0]} {_HIDDEN_POS[1]} '
        f'{_HIDDEN_POS[2]}"><geom name="scenery_geom_{i}" type="box" size="0.5 0.5 0.5" '
        f'material="scenery_mat_{i}" contype="0" conaffinity="0"/></body>'
        for i in range(max_scenery))
    robot_bodies = ''.join(
        f'<body name="robot_body_{i}" mocap="true"><geom name="robot_geom_{i}" type="mesh" '
        f'mesh="robot_mesh_{i}" material="robot_mat_{i}" contype="0" conaffinity="0"/></body>'
        for i in range(len(mesh_files)))
    distractor_bodies = ''.join(
        f'<body name="distractor_body_{i}" mocap="true" pos="{_HIDDEN_POS[0]} {_HIDDEN_POS[1]} '
        f'{_HIDDEN_POS[2]}"><geom name="distractor_geom_{i}" type="box" size="0.05 0.05 0.05" '
        f'contype="0" conaffinity="0"/></body>'
        for i in range(max_distractors))
    lights = ''.join(f'<light name="light_{i}" pos="0 0 2" dir="0 0 -1" castshadow="false" '
                     f'active="false"/>' for i in range(max_lights))
    return f"""<mujoco model="robotag_synth">
  <compiler meshdir="/" balanceinertia="true"/>
  <statistic extent="1" center="0 0 0.4"/>
  <visual>
    <global offwidth="{width}" offheight="{height}"/>
    <quality offsamples="0" shadowsize="1024"/>
    <map znear="0.01" zfar="50"/>
    <headlight active="1" ambient="0.1 0.1 0.1" diffuse="0 0 0" specular="0 0 0"/>
  </visual>
  <asset>{assets}{materials}</asset>
  <worldbody>
    {lights}
    {robot_bodies}
    {distractor_bodies}
    {scenery_bodies}
    <body name="camera_body" mocap="true">
      <camera name="camera" focalpixel="{width} {width}" principalpixel="0 0"
              sensorsize="{width} {height}" resolution="{width} {height}"/>
    </body>
  </worldbody>
</mujoco>"""


class MujocoRobotRenderer:
    """Renders one robot (visual meshes posed by FK), distractors and lights from a pinhole camera.

    Owns a MuJoCo model, data and GL context: one per process (multiprocessing workers each make
    their own). Image size is fixed per renderer; intrinsics, poses, colours and lights per frame.
    """

    def __init__(self, robot, height: int, width: int, max_distractors: int = 8,
                 max_lights: int = 4, cache_dir: str | Path | None = None,
                 render_depth: bool = True, max_scenery: int = 0):
        self.height, self.width = int(height), int(width)
        self.render_depth = render_depth
        # One geom per material part of each link's visual mesh: the same faces as the merged
        # mesh, so that the robot can wear its own colours (own_rgba) or random ones.
        geom_links, geom_link_index, own_rgba, mesh_files = [], [], [], []
        for link_index, link_mesh in enumerate(robot.visual_meshes):
            for mesh, rgba in material_parts(link_mesh) or [(link_mesh.mesh, (0.8, 0.8, 0.8, 1))]:
                geom_links.append(link_mesh.link)
                geom_link_index.append(link_index)
                own_rgba.append(rgba)
                mesh_files.append(str(mesh_to_stl(mesh, cache_dir)))
        self.robot_geom_links = geom_links
        self.geom_link_index = np.array(geom_link_index, dtype=int)
        self.own_rgba = np.array(own_rgba, dtype=float)
        self.num_robot_links = len(robot.visual_meshes)
        xml = build_scene_xml(mesh_files, self.height, self.width, max_distractors, max_lights,
                              max_scenery)
        self.model = mujoco.MjModel.from_xml_string(xml)
        self.data = mujoco.MjData(self.model)
        self.max_distractors, self.max_lights = max_distractors, max_lights
        self.max_scenery = max_scenery
        self.model.light_castshadow[:] = 0
        body = lambda name: self.model.body(name)  # noqa: E731
        self._robot_mocap = [body(f'robot_body_{i}').mocapid[0] for i in range(len(mesh_files))]
        self._robot_geom = np.array([self.model.geom(f'robot_geom_{i}').id
                                     for i in range(len(mesh_files))])
        self._robot_mat = np.array([self.model.material(f'robot_mat_{i}').id
                                    for i in range(len(mesh_files))])
        self._distractor_mocap = [body(f'distractor_body_{i}').mocapid[0]
                                  for i in range(max_distractors)]
        self._distractor_geom = np.array([self.model.geom(f'distractor_geom_{i}').id
                                          for i in range(max_distractors)], dtype=int)
        self._scenery_mocap = [body(f'scenery_body_{i}').mocapid[0] for i in range(max_scenery)]
        self._scenery_geom = np.array([self.model.geom(f'scenery_geom_{i}').id
                                       for i in range(max_scenery)], dtype=int)
        self._scenery_mat = np.array([self.model.material(f'scenery_mat_{i}').id
                                      for i in range(max_scenery)], dtype=int)
        self._scenery_tex = np.array([self.model.texture(f'scenery_tex_{i}').id
                                      for i in range(max_scenery)], dtype=int)
        self._camera_mocap = body('camera_body').mocapid[0]
        self._camera_id = self.model.camera('camera').id
        # Lookup from segmentation object id (+1 so that background -1 maps to slot 0) to robot.
        self._is_robot_geom = np.zeros(self.model.ngeom + 1, dtype=bool)
        self._is_robot_geom[self._robot_geom + 1] = True
        self._init_gl()

    def _init_gl(self) -> None:
        # Our own offscreen context rather than mujoco.Renderer: one id-colour pass gives both the
        # segmentation and the depth buffer (the Renderer draws the scene once per buffer).
        _use_egl_if_unchosen()
        from mujoco.rendering.classic import gl_context
        self._gl = gl_context.GLContext(self.width, self.height)
        self._gl.make_current()
        self._context = mujoco.MjrContext(self.model, mujoco.mjtFontScale.mjFONTSCALE_150.value)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN.value, self._context)
        self._context.readDepthMap = mujoco.mjtDepthMap.mjDEPTH_ZEROFAR  # reversed Z, as Renderer
        self._scene = mujoco.MjvScene(self.model, maxgeom=1000)
        self._option = mujoco.MjvOption()
        self._camera = mujoco.MjvCamera()
        self._camera.type = mujoco.mjtCamera.mjCAMERA_FIXED
        self._camera.fixedcamid = self._camera_id
        self._rect = mujoco.MjrRect(0, 0, self.width, self.height)
        self._rgb = np.empty((self.height, self.width, 3), np.uint8)
        self._ids = np.empty((self.height, self.width, 3), np.uint8)
        self._depth = np.empty((self.height, self.width), np.float32)
        extent = self.model.stat.extent
        z_near = np.float32(self.model.vis.map.znear * extent)
        z_far = np.float32(self.model.vis.map.zfar * extent)
        # Reversed-Z perspective depth buffer -> metric planar depth (as mujoco.Renderer does).
        c_coef = -(z_far + z_near) / (z_far - z_near)
        d_coef = -(np.float32(2) * z_far * z_near) / (z_far - z_near)
        self._depth_c = float(np.float32(-0.5) * c_coef - np.float32(0.5))
        self._depth_d = float(np.float32(-0.5) * d_coef)

    @property
    def num_robot_geoms(self) -> int:
        """Number of robot geoms (one per material part); robot_rgba has one row per geom."""
        return len(self._robot_geom)

    def link_colours_to_geoms(self, link_rgba: np.ndarray) -> np.ndarray:
        """(num_robot_links, 4) colours, one per link -> (num_robot_geoms, 4), one per part."""
        return np.asarray(link_rgba)[self.geom_link_index]

    def _set_camera(self, T_base_cam: np.ndarray, K: np.ndarray) -> None:
        model, cam = self.model, self._camera_id
        fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
        # One sensor unit per pixel. MuJoCo's principal point is an offset from the image centre,
        # measured here in the geometry module's pixel convention (pixel (0, 0) covers [0, 1)^2):
        # u = W/2 + fx x/z - px and v = H/2 + fy y/z - py in optical axes, hence px = W/2 - cx
        # (test_data_renderer checks projected mesh bounds against the rendered mask).
        model.cam_sensorsize[cam] = (self.width, self.height)
        model.cam_resolution[cam] = (self.width, self.height)
        model.cam_intrinsic[cam] = (fx, fy, self.width / 2.0 - cx, self.height / 2.0 - cy)
        R_base_mjcam = T_base_cam[:3, :3] @ R_OPTICAL_MJCAM
        self.data.mocap_pos[self._camera_mocap] = T_base_cam[:3, 3]
        self.data.mocap_quat[self._camera_mocap] = _quat_wxyz(R_base_mjcam)

    def _set_distractors(self, distractors: list) -> None:
        if len(distractors) > self.max_distractors:
            raise ValueError(f'{len(distractors)} distractors, renderer has '
                             f'{self.max_distractors} slots')
        model = self.model
        for slot, mocap in enumerate(self._distractor_mocap):
            geom = self._distractor_geom[slot]
            if slot >= len(distractors):
                self.data.mocap_pos[mocap] = _HIDDEN_POS
                continue
            item = distractors[slot]
            model.geom_type[geom] = _SHAPE_TYPE[item.shape]
            model.geom_size[geom] = item.half_size_m
            model.geom_rbound[geom] = float(np.linalg.norm(item.half_size_m)) * 2.0
            model.geom_rgba[geom] = item.rgba
            self.data.mocap_pos[mocap] = item.T_base_object[:3, 3]
            self.data.mocap_quat[mocap] = _quat_wxyz(item.T_base_object[:3, :3])

    def _set_scenery(self, scenery: list) -> None:
        if len(scenery) > self.max_scenery:
            raise ValueError(f'{len(scenery)} scenery boxes, renderer has {self.max_scenery} '
                             'slots')
        model = self.model
        for slot, mocap in enumerate(self._scenery_mocap):
            if slot >= len(scenery):
                self.data.mocap_pos[mocap] = _HIDDEN_POS
                continue
            item, geom = scenery[slot], self._scenery_geom[slot]
            model.geom_size[geom] = item.half_size_m
            model.geom_rbound[geom] = float(np.linalg.norm(item.half_size_m))
            material = self._scenery_mat[slot]
            model.mat_rgba[material] = item.rgba
            model.geom_rgba[geom] = item.rgba
            model.mat_texrepeat[material] = (item.texrepeat, item.texrepeat)
            texture = self._scenery_tex[slot]
            address, size = model.tex_adr[texture], SCENERY_TEXTURE_PX * SCENERY_TEXTURE_PX * 3
            image = (np.full((SCENERY_TEXTURE_PX, SCENERY_TEXTURE_PX, 3), 255, np.uint8)
                     if item.texture is None else item.texture)
            model.tex_data[address:address + size] = image.reshape(-1)
            mujoco.mjr_uploadTexture(model, self._context, int(texture))
            self.data.mocap_pos[mocap] = item.T_base_object[:3, 3]
            self.data.mocap_quat[mocap] = _quat_wxyz(item.T_base_object[:3, :3])

    def _set_lights(self, lights: list, headlight_ambient: float) -> None:
        model = self.model
        model.vis.headlight.ambient[:] = headlight_ambient
        for slot in range(self.max_lights):
            if slot >= len(lights):
                model.light_active[slot] = 0
                continue
            light = lights[slot]
            model.light_active[slot] = 1
            model.light_pos[slot] = light.pos_m
            model.light_dir[slot] = light.direction / np.linalg.norm(light.direction)
            model.light_diffuse[slot] = light.diffuse
            model.light_ambient[slot] = light.ambient
            model.light_specular[slot] = light.specular
            model.light_type[slot] = (mujoco.mjtLightType.mjLIGHT_DIRECTIONAL if light.directional
                                      else mujoco.mjtLightType.mjLIGHT_SPOT)
            model.light_cutoff[slot] = 80.0
            model.light_castshadow[slot] = 1 if light.cast_shadow else 0

    def render(self, state: SceneState) -> RenderOutput:
        """Draw one frame; returns rgb, robot mask, any-geometry mask and (optionally) depth."""
        model, data = self.model, self.data
        for geom_index, link in enumerate(self.robot_geom_links):
            T_base_link = np.asarray(state.link_poses[link], dtype=np.float64)
            mocap = self._robot_mocap[geom_index]
            data.mocap_pos[mocap] = T_base_link[:3, 3]
            data.mocap_quat[mocap] = _quat_wxyz(T_base_link[:3, :3])
        if state.robot_rgba is not None:
            model.geom_rgba[self._robot_geom] = state.robot_rgba
            model.mat_rgba[self._robot_mat] = state.robot_rgba
        if state.robot_specular is not None:
            model.mat_specular[self._robot_mat] = state.robot_specular
        if state.robot_shininess is not None:
            model.mat_shininess[self._robot_mat] = state.robot_shininess
        self._set_distractors(state.distractors)
        self._gl.make_current()
        self._set_scenery(state.scenery)
        self._set_lights(state.lights, state.headlight_ambient)
        self._set_camera(np.asarray(state.T_base_cam, dtype=np.float64), np.asarray(state.K))
        mujoco.mj_kinematics(model, data)
        mujoco.mj_camlight(model, data)

        self._gl.make_current()
        mujoco.mjv_updateScene(model, data, self._option, None, self._camera,
                               mujoco.mjtCatBit.mjCAT_ALL.value, self._scene)
        mujoco.mjr_render(self._rect, self._scene, self._context)
        mujoco.mjr_readPixels(self._rgb, None, self._rect, self._context)
        rgb = np.flipud(self._rgb).copy()  # GL rows run bottom-up

        flags = self._scene.flags
        flags[mujoco.mjtRndFlag.mjRND_SEGMENT] = True
        flags[mujoco.mjtRndFlag.mjRND_IDCOLOR] = True
        try:
            mujoco.mjr_render(self._rect, self._scene, self._context)
            mujoco.mjr_readPixels(self._ids, self._depth if self.render_depth else None,
                                  self._rect, self._context)
        finally:
            flags[mujoco.mjtRndFlag.mjRND_SEGMENT] = False
            flags[mujoco.mjtRndFlag.mjRND_IDCOLOR] = False
        ids = np.flipud(self._ids).astype(np.int32)
        segment = ids[..., 0] + (ids[..., 1] << 8) + (ids[..., 2] << 16)  # 0 = nothing drawn
        # Segment k is scene geom k-1; map it to a model geom id (-1 for non-geoms/background).
        geom_of_segment = np.full(self._scene.ngeom + 1, -1, np.int64)
        for index in range(self._scene.ngeom):
            geom = self._scene.geoms[index]
            if geom.segid >= 0 and geom.objtype == mujoco.mjtObj.mjOBJ_GEOM:
                geom_of_segment[geom.segid + 1] = geom.objid
        segmentation = geom_of_segment[np.minimum(segment, self._scene.ngeom)]
        robot_mask = self._is_robot_geom[segmentation + 1]
        drawn_mask = segment > 0
        depth_m = None
        if self.render_depth:
            depth_m = (self._depth_d / (np.flipud(self._depth).astype(np.float64)
                                        + self._depth_c)).astype(np.float32)
            depth_m[~drawn_mask] = 0.0
        return RenderOutput(rgb=rgb, robot_mask=robot_mask, drawn_mask=drawn_mask,
                            depth_m=depth_m, segmentation=segmentation)

    def close(self) -> None:
        """Release the GL context."""
        if getattr(self, '_gl', None) is not None:
            self._context.free()
            self._gl.free()
            self._gl = None

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: GL may already be gone
            pass
