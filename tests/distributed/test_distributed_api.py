"""In-process checks of the distributed API that need no MPI ranks: errors before init, argument
validation, ReduceOp, and the launcher's command line."""
import sys

import pytest

import autodiff as ad
import autodiff.distributed as dist
from autodiff.distributed import run as launcher


def test_not_initialized_errors():
    assert not dist.is_initialized()
    for fn in (dist.get_rank, dist.get_world_size, dist.barrier, dist.get_backend):
        with pytest.raises(RuntimeError, match="not initialized; call autodiff.distributed.init_process_group"):
            fn()
    with pytest.raises(RuntimeError, match="all_reduce: the default process group is not initialized"):
        dist.all_reduce(ad.ones(2))
    with pytest.raises(RuntimeError, match="destroy_process_group: the default process group is not"):
        dist.destroy_process_group()


def test_ddp_needs_a_process_group():
    import nn
    from nn.parallel import DistributedDataParallel
    with pytest.raises(RuntimeError, match="DistributedDataParallel: the default process group is not initialized"):
        DistributedDataParallel(nn.Linear(2, 2))


def test_bad_backend_and_timeout():
    with pytest.raises(ValueError, match="unknown backend 'gloo'"):
        dist.init_process_group("gloo")
    with pytest.raises(ValueError, match="timeout must be positive"):
        dist.init_process_group("mpi", timeout=0)
    assert not dist.is_initialized()


def test_reduce_op():
    assert dist.ReduceOp.SUM == dist.ReduceOp.SUM and dist.ReduceOp.SUM != dist.ReduceOp.AVG
    assert repr(dist.ReduceOp.MAX) == "<ReduceOp.MAX: 3>"
    assert dist.process_group._as_op("avg", "x") is dist.ReduceOp.AVG
    with pytest.raises(ValueError, match="all_reduce: op must be a ReduceOp"):
        dist.process_group._as_op("median", "all_reduce")


def test_launcher_command(monkeypatch, tmp_path):
    fake = tmp_path / "mpiexec"
    fake.write_text("#!/bin/sh\necho 'HYDRA build details'\n")
    fake.chmod(0o755)
    argv, env = launcher.build_command(3, "train.py", ["--lr", "0.1"], mpiexec=str(fake))
    assert argv == [str(fake), "-n", "3", sys.executable, "-m", "mpi4py", "train.py", "--lr", "0.1"]
    argv, _ = launcher.build_command(2, "pkg.mod", [], module=True, mpiexec=str(fake))
    assert argv[-3:] == ["mpi4py", "-m", "pkg.mod"]
    ompi = tmp_path / "ompi"
    ompi.write_text("#!/bin/sh\necho 'mpiexec (Open MPI) 5.0.8'\n")
    ompi.chmod(0o755)
    argv, env = launcher.build_command(2, "t.py", [], mpiexec=str(ompi))
    assert "--oversubscribe" in argv


def test_launcher_rejects_bad_n(capsys):
    with pytest.raises(SystemExit):
        launcher.main(["-n", "0", "train.py"])
    assert "-n must be at least 1" in capsys.readouterr().err


def test_launcher_without_mpiexec(monkeypatch, capsys):
    monkeypatch.setattr(launcher, "find_mpiexec", lambda explicit=None: None)
    assert launcher.main(["-n", "2", "train.py"]) == 127
    assert "no mpiexec found" in capsys.readouterr().err


def test_queue_callback_runs_once_after_the_outermost_backward():
    from autodiff import autograd
    w = ad.tensor([1.0, 2.0], requires_grad=True)
    v = ad.tensor([3.0, 4.0], requires_grad=True)
    seen = []

    def hook(g):
        if not seen:
            autograd.queue_callback(lambda: seen.append((w.grad.tolist(), v.grad.tolist())))
        seen.append("hook")
        return None
    w.register_hook(hook)
    # v's segment is checkpointed: the engine is re-entered for it during the outer backward
    y = (w * 2).sum() + ad.checkpoint(lambda z: (z * z).sum(), v)
    y.backward()
    assert seen == ["hook", ([2.0, 2.0], [6.0, 8.0])]  # after every leaf grad was stored, once
    seen.clear()
    ad.grad((w * 3).sum(), [w])  # an autodiff.grad pass drops its callbacks
    assert seen == ["hook"] and not autograd._queued_callbacks


def test_ddp_device_ids_must_match_the_module(monkeypatch):
    """device_ids names a GPU; a CPU module with device_ids is an error (as in PyTorch)."""
    import nn
    from autodiff.distributed import process_group as pg
    from nn.parallel import DistributedDataParallel

    class OneRank:  # a stand-in world of size 1: DDP then needs no communication at all
        rank, size, debug = 0, 1, False
    monkeypatch.setattr(pg, "_world", OneRank())
    for ids in ([0], ["cuda:0"], [ad.device("cuda", 0)]):
        with pytest.raises(ValueError, match=r"DistributedDataParallel: device_ids=.* but the module is on cpu"):
            DistributedDataParallel(nn.Linear(2, 2), device_ids=ids)
    with pytest.raises(ValueError, match="bucket_cap_mb must be positive"):
        DistributedDataParallel(nn.Linear(2, 2), bucket_cap_mb=0)
    with pytest.raises(TypeError, match="expected an nn.Module"):
        DistributedDataParallel(lambda x: x)
    lin = nn.Linear(3, 2)
    ddp = DistributedDataParallel(lin)
    assert ddp.module is lin and list(ddp.state_dict()) == ["module.weight", "module.bias"]
    x = ad.randn(4, 3)
    ddp(x).sum().backward()  # world size 1: plain local gradients
    assert lin.weight.grad is not None and lin.weight.grad.shape == (2, 3)
