"""Lists from the vectors given: finder, scorer, policies, reprints, pins. Uses: shared, articles, index."""
