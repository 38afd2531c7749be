"""The dataset tool, data set reading and distributed sampling."""

from styleforge.data.build import DatasetSummary, build_dataset
from styleforge.data.dataset import ImageDataset, check_compatible
from styleforge.data.sampler import InfiniteSampler

__all__ = ["DatasetSummary", "ImageDataset", "InfiniteSampler", "build_dataset", "check_compatible"]
