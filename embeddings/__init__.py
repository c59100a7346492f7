"""related-articles: everything that does not need HTTP (model, index, store, bundles, batch rebuild)."""

__version__ = "0.1.0"
