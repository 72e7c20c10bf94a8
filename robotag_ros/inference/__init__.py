"""Inference: backends, decoding, the two passes, the fit (loops closed) and the Estimate."""
