"""`dp segment`: human-parsing maps for person datasets (run a model, or import existing maps)."""
