"""Tests of `embeddings.build`."""
