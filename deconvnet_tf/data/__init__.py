"""Data: sources, augmentation, training crops and input pipelines."""
