"""`dp edit`: plan variants (person x catalog references), run the editing pipeline, write the manifest."""
