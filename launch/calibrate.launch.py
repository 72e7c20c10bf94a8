"""Markerless hand-eye calibration: the estimator and the calibrator on one camera (ROS 2 Jazzy).

    ros2 launch robotag_ros calibrate.launch.py camera:=/camera model:=/path/to/model \
        calibration_type:=eye_on_base frames:=200

The estimator is estimator.launch.py, included, with its per-frame /tf off (the calibrated
static transform is published instead) and its estimated joint_states moved to
/estimator/joint_states, so /joint_states holds only the robot's measured joints. The estimator
takes those measured joints too (``measured_joint_states``, default /joint_states) and fits only
the camera to them: on rendered recordings that is several times more accurate than estimating
the joints as well (benchmarks/results/calibration_model.json); ``measured_joint_states:=''``
leaves the estimator's params file in charge (its default: joints estimated from the image).
Then ``static_camera`` (on here by default) keeps a robust running estimate of the camera and,
once it is stable, holds it fixed and fits the joints alone (no mirrored arm); the camera_pose
the calibrator reads is then that estimate. With measured joints it changes nothing.
The calibrator reads /estimator/camera_pose and the estimator's /diagnostics status, writes
~/.ros2/easy_handeye2/calibrations/<name>.calib (or ``output``) after every ``frames`` frames or on
``ros2 service call /calibrator/calibrate std_srvs/srv/Trigger`` (or
``ros2 topic pub --once /calibrator/calibrate_now std_msgs/msg/Empty``), and publishes the result
on /tf_static. Its parameters come from ``calibrator_params_file`` (config/calibrator.yaml); an
argument of CALIBRATOR_OVERRIDES replaces its key only when given.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, OpaqueFunction
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from robotag_ros.ros.launch_arguments import launch_overrides

# Launch argument -> (calibrator parameter, type); each declared below with the default ''.
CALIBRATOR_OVERRIDES = {
    'calibration_type': ('calibration_type', str),
    'name': ('name', str),
    'output': ('output', str),
    'frames': ('frames_to_calibrate', int),
    'min_consistency': ('min_consistency', float),
    'base_frame': ('base_frame', str),
    'camera_frame': ('camera_frame', str),
    'effector_frame': ('effector_frame', str),
}
# Passed through to estimator.launch.py unchanged ('' there too: its params file decides).
ESTIMATOR_ARGUMENTS = ('model', 'backend', 'device', 'camera', 'image', 'params_file',
                       'camera_frame', 'base_frame', 'measured_joint_states', 'static_camera')


def _calibrator_node(context):
    return [Node(
        package='robotag_ros', executable='calibrator', name='calibrator', output='screen',
        parameters=[LaunchConfiguration('calibrator_params_file'),
                    launch_overrides(context, CALIBRATOR_OVERRIDES)],
        remappings=[('camera_pose', '/estimator/camera_pose')])]


def generate_launch_description():
    """Arguments, the included estimator (no per-frame TF) and the calibrator."""
    share = FindPackageShare('robotag_ros')
    keep = "; '' = the params file's"
    arguments = [
        DeclareLaunchArgument('model', default_value='', description='Model artifact' + keep),
        DeclareLaunchArgument('backend', default_value='', description='Backend' + keep),
        DeclareLaunchArgument('device', default_value='', description='cpu | cuda' + keep),
        DeclareLaunchArgument('camera', default_value='camera'),
        DeclareLaunchArgument('image', default_value='image_raw'),
        DeclareLaunchArgument('params_file', default_value=PathJoinSubstitution(
            [share, 'config', 'estimator.yaml']), description="The estimator's parameters."),
        DeclareLaunchArgument('calibrator_params_file', default_value=PathJoinSubstitution(
            [share, 'config', 'calibrator.yaml']), description="The calibrator's parameters."),
        DeclareLaunchArgument('calibration_type', default_value='',
                              description='eye_on_base | eye_in_hand' + keep),
        DeclareLaunchArgument('name', default_value='', description='.calib stem' + keep),
        DeclareLaunchArgument('output', default_value='', description='.calib file' + keep),
        DeclareLaunchArgument('frames', default_value='',
                              description='calibrate after every this many frames' + keep),
        DeclareLaunchArgument('min_consistency', default_value='', description=keep[2:]),
        DeclareLaunchArgument('base_frame', default_value='', description=keep[2:]),
        DeclareLaunchArgument('camera_frame', default_value='', description=keep[2:]),
        DeclareLaunchArgument('effector_frame', default_value='', description=keep[2:]),
        DeclareLaunchArgument('measured_joint_states', default_value='/joint_states',
                              description="the robot's JointState topic; '' = the estimator's "
                                          'params file decides'),
        DeclareLaunchArgument('static_camera', default_value='true',
                              description='true: the camera on its tripod is one camera '
                                          '(used when the joints are estimated: '
                                          "measured_joint_states:=''); '' = the estimator's "
                                          'params file decides'),
    ]
    estimator = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(PathJoinSubstitution(
            [share, 'launch', 'estimator.launch.py'])),
        launch_arguments=[(name, LaunchConfiguration(name)) for name in ESTIMATOR_ARGUMENTS] + [
            ('publish_tf', 'false'),   # per-frame /tf would fight the calibrated static one
            ('joint_states', '/estimator/joint_states')])
    return LaunchDescription(arguments + [estimator, OpaqueFunction(function=_calibrator_node)])
