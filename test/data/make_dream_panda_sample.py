"""Re-make test/data/dream_panda_sample: 3 small Panda frames laid out as DREAM's REAL sets are.

Real-set layout (panda-3cam_*): locations in METRES, no ``quaternion_xyzw``, no per-frame
intrinsics (only ``_camera_settings.json``), and here frames 0 and 1 without ``sim_state``
(frame 2 keeps it, like a set with recorded joint states). Images come from our renderer.
Run: PYTHONPATH=. python test/data/make_dream_panda_sample.py
"""
import json
from pathlib import Path

import numpy as np

from robotag_ros.data.synthetic.dr_config import DRConfig
from robotag_ros.data.synthetic.frame_generator import SyntheticFrameGenerator, encode_jpeg
from robotag_ros.robot import load_robot

OUT = Path(__file__).parent / 'dream_panda_sample'
HEIGHT, WIDTH = 96, 128
# panda-3cam_azure intrinsics (640x480) scaled to 128x96.
K = np.array([[399.658 / 5, 0, 319.896 / 5], [0, 399.496 / 5, 244.060 / 5], [0, 0, 1]])


def main():
    robot = load_robot('panda')
    config = DRConfig()
    config.camera.intrinsics_px = [K[0, 0], K[1, 1], K[0, 2], K[1, 2]]
    config.save_depth = False
    generator = SyntheticFrameGenerator(robot, config, HEIGHT, WIDTH)
    OUT.mkdir(exist_ok=True)
    (OUT / '_camera_settings.json').write_text(json.dumps({'camera_settings': [{
        'name': 'azure_scaled', 'horizontal_fov': 77.3,
        'intrinsic_settings': {'fx': K[0, 0], 'fy': K[1, 1], 'cx': K[0, 2], 'cy': K[1, 2],
                               's': 0},
        'captured_image_size': {'width': WIDTH, 'height': HEIGHT}}]}, indent=1))
    for index in range(3):
        frame = generator.generate(seed=7, frame_index=index)
        (OUT / f'{index:06d}.rgb.jpg').write_bytes(encode_jpeg(frame.rgb, 80))
        annotation = {'objects': [{
            'class': 'panda', 'name': 'panda',
            'location': np.round(frame.T_cam_base[:3, 3], 6).tolist(),
            'keypoints': [{'name': name, 'location': np.round(p, 6).tolist(),
                           'projected_location': np.round(uv, 4).tolist()}
                          for name, p, uv in zip(robot.keypoint_names, frame.keypoints_3d_m,
                                                 frame.keypoints_2d_px)]}]}
        if index == 2:
            annotation['sim_state'] = {'joints': [
                {'name': f'panda/{joint}', 'position': float(angle)}
                for joint, angle in zip(robot.joint_names, frame.joint_angles_rad)]}
        (OUT / f'{index:06d}.json').write_text(json.dumps(annotation, indent=1))


if __name__ == '__main__':
    main()
