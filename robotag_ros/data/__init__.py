"""Training and evaluation data: DREAM folders, rosbag2 images, synthetic rendering.

Subpackages (import the module you need; the renderer pulls in MuJoCo/EGL, the readers do not):
- ``dream``: the NDDS/DREAM file format (centimetres), ``dataset.DreamDataset`` (a torch
  Dataset over one folder), the ``writer`` and ``contact_sheet`` (a labelled grid).
- ``synthetic``: ``renderer.MujocoRobotRenderer`` (FK-posed meshes, offscreen), camera and
  background sampling, ``dr_config`` (every randomisation knob), ``frame_generator`` (one
  labelled DR frame per (seed, index)), ``set_generator`` (a whole set: seeds, shards, resume),
  ``sample_sequence`` (the sample bag's smooth recording).
- ``bags``: unlabelled images from rosbag2 files and image folders, the sample bag.
- ``image_aug``: photometric augmentation (training and rendering); ``cli``: robotag-synth and
  robotag-contact-sheet.
"""
