"""The ROS 2 layer: the only package folder that imports rclpy or any *_msgs package.

conversions: sensor_msgs Image/CameraInfo <-> numpy; messages: Estimate -> ROS messages;
estimator_node: the node (console script `estimator`), with estimate_publishers (its outputs),
camera_info_watch (its camera_info bookkeeping) and tf_sender (/tf with or without tf2_ros);
parameters: nodes' parameters declared and validated from their schemas (robotag_ros.parameters);
calibration_node: live hand-eye calibration (console script `calibrator`); static_tf:
/tf_static the way tf2_ros publishes it;
spin: spinning with a clean Ctrl-C; frame_driver: publishing frames into the node and
collecting its answer to each (the one driver of the sample player, the node tests and the
latency benchmark); sample_player / output_listener: the processes that play a sample bag into
the node and record its outputs (robotag_ros.harness runs them);
launch_arguments: the launch files' "override the params file only when given" rule. The demo
and the rest of the child-process harness live in robotag_ros.harness.
"""
