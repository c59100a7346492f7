"""The HTTP layer (FastAPI): the app factory, the API by resource, its schemas, errors and middleware."""
