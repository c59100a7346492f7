"""Lists from the vectors given: finder, scorer, policies, reprints. Uses: shared, index."""
