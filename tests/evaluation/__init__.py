"""Tests of `embeddings.evaluation`."""
