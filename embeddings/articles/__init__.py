"""Articles: the Article model, the text of an article that is embedded, archive readers. Uses: shared."""
