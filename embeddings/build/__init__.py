"""The batch rebuild, here or on Ray. Uses: shared, articles, model, index, ranking, live."""
