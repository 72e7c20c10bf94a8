"""The ROS 2 layer: the only place that imports rclpy or any *_msgs package.

conversions: sensor_msgs Image/CameraInfo <-> numpy; messages: Estimate -> ROS messages;
estimator_node: the node (console script `estimator`); fake_estimator: a ROS-free stand-in
estimator for tests and benchmarks of the ROS plumbing; local_dds: the machine-local DDS
environment for child processes; bundled: where the default model and sample bag are;
sample_player / output_listener: processes that play a sample bag into the node and record its
outputs; sample_run: runs those processes and scores the outputs against the ground truth (no
rclpy in it); demo: the README's demo (`python -m robotag_ros.ros.demo`); launch_arguments:
the launch files' "override the params file only when given" rule.
"""
