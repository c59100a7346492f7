"""related-articles HTTP service (FastAPI)."""
