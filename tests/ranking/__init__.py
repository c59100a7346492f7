"""Tests of `embeddings.ranking`."""
