"""Detectors map a batch of texts to ``scores[n, 5]`` (columns in ``CATEGORY_IDS`` order)."""
