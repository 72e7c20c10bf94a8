"""The nodes' parameter schemas (ROS-free): the ROS layer declares them, and the params files
and the docs' parameter table are rendered from them (``python -m robotag_ros.parameters``)."""
