"""StyleForge: training, evaluating and using style-based GANs in pure PyTorch."""

__version__ = "0.1.0"
