"""The domain-randomised renderer: MuJoCo scenes, cameras, backgrounds, the DR config, labelled
frames and whole sets."""
