"""Texts to vectors: e5 conversion, torch and ONNX encoders, signals, embedding cache. Uses: shared."""
