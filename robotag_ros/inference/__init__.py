"""Inference: model artifacts, preprocessing, backends, decoding and the Estimate."""
