"""Tests of `embeddings.live`."""
