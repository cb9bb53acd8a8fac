"""Data-parallel training of the MNIST MLP on several MPI ranks.

    make data                                                   # writes data/mnist.npz (once)
    python -m autodiff.distributed.run -n 2 examples/ddp_mnist.py --epochs 1

Each rank reads its own shard of the training set (`DistributedSampler`), computes gradients on it,
and `DistributedDataParallel` averages them across ranks after every `backward()`, so the ranks
stay identical and the run is equivalent to single-process training with a global batch of
`--batch-size * world_size`. Rank 0 prints progress and the test accuracy; `--save` writes rank 0's
weights (`model.module.state_dict()`, no "module." prefix).

Runs on one rank too (`python examples/ddp_mnist.py`): then no MPI launcher is needed.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

import autodiff as ad  # noqa: E402
import autodiff.distributed as dist  # noqa: E402
import nn  # noqa: E402
import optim  # noqa: E402
from autodiff.data import MNIST, DataLoader, DistributedSampler  # noqa: E402
from nn.parallel import DistributedDataParallel as DDP  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="data", help="folder with mnist.npz or the IDX files (default: data)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=64, help="per-rank batch size")
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--limit", type=int, default=0, help="use only the first N training images (0: all)")
    p.add_argument("--backend", default="mpi", choices=["mpi", "nccl"])
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save", default="", help="write rank 0's state_dict here (autodiff.save)")
    args = p.parse_args(argv)

    dist.init_process_group(args.backend)
    rank, world = dist.get_rank(), dist.get_world_size()
    log = print if rank == 0 else (lambda *a, **k: None)

    ad.manual_seed(args.seed + rank)  # different init per rank on purpose: DDP broadcasts rank 0's
    train = MNIST(args.data, train=True)
    test = MNIST(args.data, train=False)
    if args.limit:
        from autodiff.data import Subset
        train = Subset(train, range(min(args.limit, len(train))))
    sampler = DistributedSampler(train, num_replicas=world, rank=rank, shuffle=True, seed=args.seed)
    loader = DataLoader(train, batch_size=args.batch_size, sampler=sampler, drop_last=True, device=args.device)

    model = nn.Sequential(nn.Flatten(), nn.Linear(784, args.hidden), nn.ReLU(),
                          nn.Linear(args.hidden, args.hidden), nn.ReLU(), nn.Linear(args.hidden, 10))
    model = model.to(args.device)
    ddp = DDP(model)
    opt = optim.SGD(ddp.parameters(), lr=args.lr, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    log(f"world size {world}, {len(train)} training images, {len(sampler)} per rank, global batch "
        f"{args.batch_size * world}, {len(ddp._buckets)} gradient bucket(s)")

    for epoch in range(args.epochs):
        sampler.set_epoch(epoch)
        ddp.train()
        t0 = time.perf_counter()
        comm0 = ddp.comm_seconds
        total, seen = 0.0, 0
        for step, (x, y) in enumerate(loader):
            opt.zero_grad()
            loss = loss_fn(ddp(x), y)
            loss.backward()
            opt.step()
            if step % 100 == 0:
                lv = loss.item()
                total += lv
                seen += 1
                log(f"epoch {epoch} step {step:4d}/{len(loader)} loss {lv:.4f}")
        dt = time.perf_counter() - t0
        rate = len(loader) * args.batch_size * world / dt
        log(f"epoch {epoch}: {dt:.1f} s, {rate:.0f} samples/s over {world} rank(s), "
            f"{ddp.comm_seconds - comm0:.2f} s in gradient all-reduce (rank 0)")

    # Every rank evaluates its share of the test set; the counts are summed with all_reduce.
    ddp.eval()
    correct = ad.zeros(2, dtype=ad.float64)
    images, labels = test.data.numpy(), test.targets.numpy()
    idx = np.arange(rank, len(test), world)
    with ad.no_grad():
        for lo in range(0, len(idx), 1000):
            part = idx[lo:lo + 1000]
            x = ad.tensor(images[part].astype(np.float32) / 255.0, device=args.device)
            pred = ddp.module(x).argmax(1).cpu().numpy()
            correct.data[0] += float((pred == labels[part]).sum())
            correct.data[1] += len(part)
    dist.all_reduce(correct)
    acc = correct.data[0] / correct.data[1]
    log(f"test accuracy {acc:.4f} ({int(correct.data[0])}/{int(correct.data[1])})")
    if args.save and rank == 0:
        ad.save(ddp.module.state_dict(), args.save)
        log(f"saved {args.save}")
    dist.destroy_process_group()
    return acc


if __name__ == "__main__":
    main()
