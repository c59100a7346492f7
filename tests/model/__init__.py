"""Tests of `embeddings.model` (the real model, loaded once per session)."""
