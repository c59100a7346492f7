"""Tests of `embeddings.articles`."""
