"""snrbench."""
