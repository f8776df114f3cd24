"""`dp demo`: the whole pipeline on a fresh toy world with the shipped toy model."""
