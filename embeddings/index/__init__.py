"""Storage: FAISS index, SQLite store, row columns and filters, bundles on disk. Uses: shared, articles."""
