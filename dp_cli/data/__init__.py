"""Person datasets, label sets, attribute lexicons and the dataset formats."""
