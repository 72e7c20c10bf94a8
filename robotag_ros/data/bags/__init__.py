"""Unlabelled images from rosbag2 files and image folders, and the sample bag."""
