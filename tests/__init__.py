"""The tests: one folder per part of `embeddings/` (and `service/`), named after the modules they test."""
