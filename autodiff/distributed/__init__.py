"""Distributed data-parallel training on MPI (mpi4py) and NCCL (cupy.cuda.nccl), with PyTorch's names.

    import autodiff.distributed as dist
    dist.init_process_group("mpi")          # ranks and world size come from mpiexec
    dist.all_reduce(t, op=dist.ReduceOp.AVG)

Launch with `python -m autodiff.distributed.run -n 4 train.py args...` (wraps `mpiexec`). Wrap the
model in `nn.parallel.DistributedDataParallel` and shard the data with
`autodiff.data.DistributedSampler`. Importing this package does not import mpi4py; that happens
in `init_process_group`.
"""
from .process_group import (DistributedTimeoutError, ReduceOp, Work, all_gather, all_gather_into_tensor,
                            all_reduce, barrier, broadcast, destroy_process_group, get_backend, get_rank,
                            get_world_size, group, init_process_group, is_available, is_initialized,
                            is_mpi_available, is_nccl_available, reduce_scatter, reduce_scatter_tensor)

__all__ = ["DistributedTimeoutError", "ReduceOp", "Work", "all_gather", "all_gather_into_tensor", "all_reduce",
           "barrier", "broadcast", "destroy_process_group", "get_backend", "get_rank", "get_world_size", "group",
           "init_process_group", "is_available", "is_initialized", "is_mpi_available", "is_nccl_available",
           "reduce_scatter", "reduce_scatter_tensor"]
