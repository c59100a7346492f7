"""related-articles without HTTP: articles -> model -> index -> ranking, with build and live beside.

The shared modules (settings, errors, logs, vectors) use no part; each part's `__init__` names the parts
it may use, `cli` may use them all, and nothing here imports `service/` (tests/test_layout.py checks).
"""

__version__ = "0.1.0"
