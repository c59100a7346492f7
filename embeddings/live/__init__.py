"""The live corpus: write log, snapshots, list cache. Uses: shared, articles, model, index, ranking."""
