"""Training and evaluation data: DREAM folders, rosbag2 images, synthetic rendering.

Modules (import the one you need; the renderer pulls in MuJoCo/EGL, the readers do not):
- ``dream_dataset.DreamDataset``: a torch Dataset over one DREAM-format folder.
- ``dream_writer`` / ``dream_format``: the NDDS files, centimetres.
- ``synth.SyntheticFrameGenerator``: one labelled DR frame per (seed, index).
- ``renderer.MujocoRobotRenderer``: MuJoCo offscreen rendering of FK-posed meshes.
- ``dr_config``: every randomisation knob (dataclasses + YAML); ``synth_set``: a whole set
  (seeds, shards, resume); ``contact_sheet``: a labelled grid; ``cli``: robotag-synth and
  robotag-contact-sheet.
- ``bag_images`` / ``unlabelled``: unlabelled images from rosbag2 files and image folders.
"""
