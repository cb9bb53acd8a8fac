"""Data loading: datasets, the DataLoader, and the MNIST / Fashion-MNIST readers
(PyTorch's `torch.utils.data` and torchvision's dataset names)."""
from .dataloader import (BatchSampler, DataLoader, RandomSampler, Sampler, SequentialSampler,
                         SubsetRandomSampler, default_collate)
from .dataset import ConcatDataset, Dataset, Subset, TensorDataset, random_split
from .mnist import MNIST, DataError, FashionMNIST, parse_idx, read_idx, write_idx

__all__ = ["BatchSampler", "ConcatDataset", "DataError", "DataLoader", "Dataset", "FashionMNIST", "MNIST",
           "RandomSampler", "Sampler", "SequentialSampler", "Subset", "SubsetRandomSampler", "TensorDataset",
           "default_collate", "parse_idx", "random_split", "read_idx", "write_idx"]
from .distributed import DistributedSampler  # noqa: E402,F401 - issue 8 (distributed training)
