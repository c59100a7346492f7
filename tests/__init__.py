"""The tests: one package per part of `embeddings/` (and `service/`), one module per source module."""
