"""Tests of `embeddings.index`."""
