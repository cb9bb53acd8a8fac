"""Data parallelism: `DistributedDataParallel` over `autodiff.distributed` (MPI / NCCL)."""
from .distributed import DistributedDataParallel

DDP = DistributedDataParallel

__all__ = ["DistributedDataParallel", "DDP"]
