"""Training data: DREAM-format reader/writer and the domain-randomised synthetic renderer.

Modules (import the one you need; the renderer pulls in MuJoCo/EGL, the reader does not):
- ``dream_dataset.DreamDataset``: a torch Dataset over one DREAM-format folder.
- ``dream_writer`` / ``dream_format``: the NDDS files, centimetres, atomic writes.
- ``synth.SyntheticFrameGenerator``: one labelled DR frame per (seed, index).
- ``renderer.MujocoRobotRenderer``: MuJoCo offscreen rendering of FK-posed meshes.
- ``dr_config``: every randomisation knob (dataclasses + YAML); ``synth_cli``: robotag-synth;
  ``contact_sheet``: robotag-contact-sheet.
"""
