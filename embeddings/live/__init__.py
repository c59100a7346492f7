"""Live writes: the write log, snapshots over a bundle. Uses: shared, articles, model, index, ranking."""
