"""Markerless hand-eye calibration: the estimator and the calibrator on one camera (ROS 2 Jazzy).

    ros2 launch robotag_ros calibrate.launch.py camera:=/camera model:=/path/to/model \
        calibration_type:=eye_on_base frames:=200

The calibrator reads /estimator/camera_pose and /diagnostics, writes
~/.ros2/easy_handeye2/calibrations/<name>.calib (or ``output``) after every ``frames`` frames or on
``ros2 service call /calibrator/calibrate std_srvs/srv/Trigger`` (or
``ros2 topic pub --once /calibrator/calibrate_now std_msgs/msg/Empty``), and publishes the result
on /tf_static. For eye_in_hand the estimator's own joint_states is remapped away from
/joint_states so the calibrator reads only the robot's measured joint states. The estimator
takes the measured joints too (``measured_joint_states``, default /joint_states) and fits only
the camera to them: on rendered recordings that is several times more accurate than estimating
the joints as well (benchmarks/results/calibration_model.json); ``measured_joint_states:=''``
estimates them from the image.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    """Arguments, the estimator (no per-frame TF: the calibrator publishes) and the calibrator."""
    arguments = [
        DeclareLaunchArgument('model', default_value='', description='Model artifact.'),
        DeclareLaunchArgument('backend', default_value='auto'),
        DeclareLaunchArgument('device', default_value='cpu'),
        DeclareLaunchArgument('camera', default_value='camera'),
        DeclareLaunchArgument('image', default_value='image_raw'),
        DeclareLaunchArgument('params_file', default_value=PathJoinSubstitution(
            [FindPackageShare('robotag_ros'), 'config', 'estimator.yaml'])),
        DeclareLaunchArgument('calibration_type', default_value='eye_on_base',
                              description='eye_on_base | eye_in_hand'),
        DeclareLaunchArgument('name', default_value='robotag'),
        DeclareLaunchArgument('output', default_value='',
                              description="'' = easy_handeye2's calibrations folder"),
        DeclareLaunchArgument('frames', default_value='200',
                              description='calibrate after every this many frames'),
        DeclareLaunchArgument('min_consistency', default_value='0.5'),
        DeclareLaunchArgument('base_frame', default_value='panda_link0'),
        DeclareLaunchArgument('camera_frame', default_value='camera_color_optical_frame'),
        DeclareLaunchArgument('effector_frame', default_value='panda_hand'),
        DeclareLaunchArgument('measured_joint_states', default_value='/joint_states',
                              description="the robot's JointState topic; '' = estimate the "
                                          'joints from the image too'),
    ]

    def text(name):
        return ParameterValue(LaunchConfiguration(name), value_type=str)

    camera = LaunchConfiguration('camera')
    estimator = Node(
        package='robotag_ros', executable='estimator', name='estimator', output='screen',
        parameters=[LaunchConfiguration('params_file'), {
            'model_path': text('model'), 'backend': text('backend'),
            'device': text('device'), 'camera_frame': text('camera_frame'),
            'base_frame': text('base_frame'),
            'measured_joint_states_topic': text('measured_joint_states'),
            # The per-frame /tf would fight the calibrated static transform.
            'publish_tf': False}],
        remappings=[('image', [camera, '/', LaunchConfiguration('image')]),
                    ('camera_info', [camera, '/camera_info']),
                    ('joint_states', '/estimator/joint_states')])
    calibrator = Node(
        package='robotag_ros', executable='calibrator', name='calibrator', output='screen',
        parameters=[{
            'calibration_type': text('calibration_type'), 'name': text('name'),
            'output': text('output'),
            'frames_to_calibrate': ParameterValue(LaunchConfiguration('frames'), value_type=int),
            'min_consistency': ParameterValue(LaunchConfiguration('min_consistency'),
                                              value_type=float),
            'base_frame': text('base_frame'), 'camera_frame': text('camera_frame'),
            'effector_frame': text('effector_frame')}],
        remappings=[('camera_pose', '/estimator/camera_pose')])
    return LaunchDescription(arguments + [estimator, calibrator])
