"""The robot prior: robot descriptions (YAML + URDF), forward kinematics, keypoints, points."""
from robotag_ros.robot.description import (RobotDescription, RobotDescriptionError,
                                           bundled_robots, load_description)
from robotag_ros.robot.meshes import LinkMesh
from robotag_ros.robot.model import RobotModel, load_robot

__all__ = ['LinkMesh', 'RobotDescription', 'RobotDescriptionError', 'RobotModel',
           'bundled_robots', 'load_description', 'load_robot']
