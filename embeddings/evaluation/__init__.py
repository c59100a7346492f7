"""Scores and lists against human pairs. Uses: shared, articles, model, index, ranking, build."""
