"""Launch the robotag_ros estimator on one camera (ROS 2 Jazzy).

    ros2 launch robotag_ros estimator.launch.py camera:=/camera model:=/path/to/model

Subscribes to <camera>/<image> and <camera>/camera_info; publishes joint_states, /tf,
~/camera_pose, ~/debug_image, ~/keypoints, ~/points and /diagnostics. The model, backend,
device, robot and estimator_factory arguments override the same keys of the params file.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    """Arguments, then the estimator node with the params file, overrides and remappings."""
    arguments = [
        DeclareLaunchArgument('model', default_value='',
                              description="Model artifact; '' = the bundled default."),
        DeclareLaunchArgument('backend', default_value='auto',
                              description='auto (onnxruntime on cpu, torch on cuda) | torch | '
                                          'onnxruntime | tensorrt'),
        DeclareLaunchArgument('device', default_value='cpu', description='cpu | cuda | cuda:N'),
        DeclareLaunchArgument('robot', default_value='',
                              description="Robot name or YAML; '' = the model's robot."),
        DeclareLaunchArgument('camera', default_value='camera',
                              description='Camera namespace holding the image and camera_info.'),
        DeclareLaunchArgument('image', default_value='image_raw',
                              description='Image topic inside the camera namespace.'),
        DeclareLaunchArgument('params_file', default_value=PathJoinSubstitution(
            [FindPackageShare('robotag_ros'), 'config', 'estimator.yaml']),
            description='Parameters file in estimator: ros__parameters: form.'),
        DeclareLaunchArgument('estimator_factory', default_value='',
                              description="'module:callable' building the estimator; '' = "
                                          'the default (tests pass the fake estimator).'),
    ]

    def text(name):
        # Keep '' and numeric-looking strings strings (launch would YAML-parse them).
        return ParameterValue(LaunchConfiguration(name), value_type=str)

    camera = LaunchConfiguration('camera')
    estimator = Node(
        package='robotag_ros',
        executable='estimator',
        name='estimator',
        output='screen',
        parameters=[LaunchConfiguration('params_file'), {
            'model_path': text('model'),
            'backend': text('backend'),
            'device': text('device'),
            'robot': text('robot'),
            'estimator_factory': text('estimator_factory'),
        }],
        remappings=[
            ('image', [camera, '/', LaunchConfiguration('image')]),
            ('camera_info', [camera, '/camera_info']),
        ],
    )
    return LaunchDescription(arguments + [estimator])
