"""The demo and the child-process harness around the node, ROS-free (the processes it starts
are the ROS layer's: the node, robotag_ros.ros.sample_player and .output_listener).

demo: the README's demo (`python -m robotag_ros.harness.demo`); sample_run: NodeSession runs the
node, the sample player and the output listener as child processes and scores the outputs
against the ground truth;
local_dds: the machine-local DDS environment every child process gets; fake_estimator: a
ROS-free stand-in estimator for tests and benchmarks of the ROS plumbing
(``estimator_factory: robotag_ros.harness.fake_estimator:make_fake_estimator``).
"""
