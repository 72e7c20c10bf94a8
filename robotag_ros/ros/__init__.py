"""The ROS 2 layer: the only place that imports rclpy or any *_msgs package.

conversions: sensor_msgs Image/CameraInfo <-> numpy; messages: Estimate -> ROS messages;
estimator_node: the node (console script `estimator`); fake_estimator: a ROS-free stand-in
estimator for tests and benchmarks of the ROS plumbing.
"""
