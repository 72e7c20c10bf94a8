"""Launch the robotag_ros estimator on one camera (ROS 2 Jazzy).

    ros2 launch robotag_ros estimator.launch.py camera:=/camera model:=/path/to/model

Subscribes to <camera>/<image> and <camera>/camera_info; publishes joint_states, /tf,
~/camera_pose, ~/debug_image, ~/keypoints, ~/points and /diagnostics. The parameters come from
``params_file`` (config/estimator.yaml); an argument of PARAMETER_OVERRIDES replaces its key
only when given (robotag_ros/ros/launch_arguments.py says why).
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from robotag_ros.ros.launch_arguments import launch_overrides

# Launch argument -> (estimator parameter, type); each declared below with the default ''.
PARAMETER_OVERRIDES = {
    'model': ('model_path', str),
    'backend': ('backend', str),
    'device': ('device', str),
    'robot': ('robot', str),
    'estimator_factory': ('estimator_factory', str),
    'camera_frame': ('camera_frame', str),
    'base_frame': ('base_frame', str),
    'measured_joint_states': ('measured_joint_states_topic', str),
    'publish_tf': ('publish_tf', bool),
    'static_camera': ('static_camera', bool),
    'camera_calibration_file': ('camera_calibration_file', str),
}


def _estimator_node(context):
    camera = LaunchConfiguration('camera')
    return [Node(
        package='robotag_ros',
        executable='estimator',
        name='estimator',
        output='screen',
        parameters=[LaunchConfiguration('params_file'),
                    launch_overrides(context, PARAMETER_OVERRIDES)],
        remappings=[
            ('image', [camera, '/', LaunchConfiguration('image')]),
            ('camera_info', [camera, '/camera_info']),
            ('joint_states', LaunchConfiguration('joint_states')),
        ],
    )]


def generate_launch_description():
    """Arguments, then the estimator node with the params file, given overrides, remappings."""
    keep = "; '' = the params file's"
    arguments = [
        DeclareLaunchArgument('model', default_value='',
                              description='Model artifact' + keep + " ('' there: the bundled "
                                          'default).'),
        DeclareLaunchArgument('backend', default_value='',
                              description='auto (onnxruntime on cpu, torch on cuda) | torch | '
                                          'onnxruntime | tensorrt' + keep),
        DeclareLaunchArgument('device', default_value='',
                              description='cpu | cuda | cuda:N' + keep),
        DeclareLaunchArgument('robot', default_value='',
                              description='Robot name or YAML' + keep),
        DeclareLaunchArgument('estimator_factory', default_value='',
                              description="'module:callable' building the estimator" + keep),
        DeclareLaunchArgument('camera_frame', default_value='',
                              description='Camera optical frame' + keep),
        DeclareLaunchArgument('base_frame', default_value='',
                              description='Robot base frame' + keep),
        DeclareLaunchArgument('measured_joint_states', default_value='',
                              description="The robot's JointState topic (fit only the camera)"
                                          + keep),
        DeclareLaunchArgument('publish_tf', default_value='',
                              description='true | false: per-frame /tf' + keep),
        DeclareLaunchArgument('static_camera', default_value='',
                              description='true | false: the camera does not move (its '
                                          'running estimate is held fixed once stable)' + keep),
        DeclareLaunchArgument('camera_calibration_file', default_value='',
                              description='An eye-on-base .calib: the camera fixed from the '
                                          'first frame' + keep),
        DeclareLaunchArgument('camera', default_value='camera',
                              description='Camera namespace holding the image and camera_info.'),
        DeclareLaunchArgument('image', default_value='image_raw',
                              description='Image topic inside the camera namespace.'),
        DeclareLaunchArgument('joint_states', default_value='joint_states',
                              description='Where the estimated JointState goes.'),
        DeclareLaunchArgument('params_file', default_value=PathJoinSubstitution(
            [FindPackageShare('robotag_ros'), 'config', 'estimator.yaml']),
            description='Parameters file in estimator: ros__parameters: form.'),
    ]
    return LaunchDescription(arguments + [OpaqueFunction(function=_estimator_node)])
