"""Weights handling: the model store, checkpoint loading and checking against the bundled key/shape
manifests, and resumable downloads."""
