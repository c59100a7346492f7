"""Articles: the Article model, its text, its canonical URL, its list's rules, readers. Uses: shared."""
