"""RoboTAG robot pose estimation: the ROS-free core (the ROS layer lives in robotag_ros.ros)."""
