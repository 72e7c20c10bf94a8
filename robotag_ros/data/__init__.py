"""Training and evaluation data: DREAM folders, rosbag2 images, synthetic rendering."""
