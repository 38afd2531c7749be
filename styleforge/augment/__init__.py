"""Differentiable augmentations applied to every D input (ADA, DiffAugment)."""
