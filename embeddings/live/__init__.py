"""Live writes: the write log and its binding, snapshots. Uses: shared, articles, model, index, ranking."""
