"""Train the seed MLP (or a small CNN) on MNIST: `python -m autodiff.train` (what `make demo` runs).

    python -m autodiff.train --model mlp|cnn --device cpu|cuda --backend numpy|numba --epochs N
        --batch-size B --lr LR --optimizer adam|sgd|adamw|... --seed S [--amp]
        [--checkpoint PATH] [--resume] [--data-root data] [--limit N] [--plot PATH | --no-plot]

Per epoch it shows a progress bar (tqdm: loss, accuracy, samples/s), then prints test loss and
accuracy and the epoch's wall time, and saves a checkpoint atomically (temp file + `os.replace`).
At the end it prints the final test accuracy and the mean time per epoch, and writes a
loss/accuracy curve PNG when matplotlib is importable (otherwise it says so).

Defaults: the best available device (CUDA when `autodiff.cuda.is_available()`, else the CPU with
the numba backend when it loads, else NumPy); inputs standardised with MNIST's mean/std; MLP: Adam
lr 1e-3 with cosine annealing, batch 128, 10 epochs (reaches >= 97.5% test accuracy); CNN: the
same with 5 epochs (>= 98.8%).

Reliability
- `--resume` restores model, optimizer, scheduler, the data-order generator, autodiff's global
  CPU generator and the epoch counter from the checkpoint, so that the resumed run ends at exactly
  the parameters of an uninterrupted one (tested bit for bit). CuPy's generator state is not saved
  (it only affects dropout on the GPU; the models here have none).
- A NaN/Inf loss stops training with `NonFiniteLossError` naming the epoch and the step. Losses
  are read back to the host in groups (every step on the CPU, every `sync_every` steps on a GPU),
  so the check does not stall the device each step.

The data: `autodiff.data.MNIST("data")`, i.e. `data/mnist.npz` written by `make data`, or the IDX
files (see `autodiff/data/mnist.py`). MNIST's train split is the standard 60,000 images (the
50,000 train + 10,000 validation images of mnist.pkl.gz), the test split the 10,000 test images.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time

import numpy as np

import autodiff
from autodiff import backends

DEFAULTS = {
    "mlp": dict(epochs=10, lr=1e-3, optimizer="adam", batch_size=128),
    "cnn": dict(epochs=5, lr=1e-3, optimizer="adam", batch_size=128),
}


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or Inf; the message names the epoch and step."""


# ----------------------------------------------------------------------------- models
def make_model(name):
    """The seed's MLP 784-128-64-10 ('mlp') or a small CNN ('cnn')."""
    import nn

    if name == "mlp":
        class Net(nn.Module):
            def __init__(self):
                super(Net, self).__init__()
                self.fc1 = nn.Linear(784, 128)
                self.fc2 = nn.Linear(128, 64)
                self.fc3 = nn.Linear(64, 10)

            def forward(self, x):
                x = x.view(x.shape[0], -1)
                x = autodiff.relu(self.fc1(x))
                x = autodiff.relu(self.fc2(x))
                return self.fc3(x)
        return Net()
    if name == "cnn":
        class ConvNet(nn.Module):
            """conv 5x5 1->16, ReLU, maxpool 2, conv 5x5 16->32, ReLU, maxpool 2, linear 1568->10."""

            def __init__(self):
                super().__init__()
                self.conv1 = nn.Conv2d(1, 16, 5, padding=2)
                self.conv2 = nn.Conv2d(16, 32, 5, padding=2)
                self.pool = nn.MaxPool2d(2)
                self.fc = nn.Linear(32 * 7 * 7, 10)

            def forward(self, x):
                x = self.pool(autodiff.relu(self.conv1(x)))
                x = self.pool(autodiff.relu(self.conv2(x)))
                return self.fc(x.reshape(x.shape[0], -1))
        return ConvNet()
    raise ValueError(f"train: unknown model {name!r}; choose 'mlp' or 'cnn'")


def make_optimizer(name, params, lr, momentum=0.9, weight_decay=0.0):
    import optim
    key = name.lower()
    table = {k.lower(): getattr(optim, k) for k in dir(optim) if isinstance(getattr(optim, k), type)
             and issubclass(getattr(optim, k), optim.Optimizer) and k != "Optimizer"}
    if key not in table:
        raise ValueError(f"train: unknown optimizer {name!r}; available: {', '.join(sorted(table))}")
    kw = {"lr": lr}
    if weight_decay:
        kw["weight_decay"] = weight_decay
    if key in ("sgd", "rmsprop") and momentum:
        kw["momentum"] = momentum
    return table[key](params, **kw)


# ----------------------------------------------------------------------------- devices
def best_device():
    """'cuda' when a GPU with CuPy is usable, else 'cpu'."""
    try:
        from autodiff import cuda
        if cuda.is_available():
            return "cuda"
    except Exception:  # noqa: BLE001 - any failure means no usable GPU
        pass
    return "cpu"


def best_cpu_backend():
    """'numba' when it loads (compiled kernels), else 'numpy'."""
    try:
        backends.get_backend("numba")
        return "numba"
    except Exception:  # noqa: BLE001
        return "numpy"


# ----------------------------------------------------------------------------- running averages
class RunningMeter:
    """Running sums of the loss and of metric numerators, kept as device tensors and read back to
    the host once every `sync_every` steps (one transfer for the whole group), where non-finite
    losses are detected and reported with the exact step."""

    def __init__(self, epoch, sync_every=1, names=()):
        self.epoch = epoch
        self.sync_every = max(1, int(sync_every))
        self.names = tuple(names)
        self.pending = []     # (step, n, loss tensor, [metric tensors])
        self.count = 0
        self.loss_sum = 0.0
        self.sums = {k: 0.0 for k in self.names}
        self.steps = 0

    def update(self, step, n, loss, metrics=()):
        self.pending.append((step, n, loss.detach(), [m.detach() for m in metrics]))
        if len(self.pending) >= self.sync_every:
            self.flush()

    def flush(self):
        if not self.pending:
            return
        from autodiff.ops.shape import stack
        vals = [p[2].reshape(()).to(autodiff.float64) for p in self.pending]
        for p in self.pending:
            vals.extend(m.reshape(()).to(autodiff.float64) for m in p[3])
        host = stack(vals).numpy() if len(vals) > 1 else vals[0].numpy().reshape(1)
        k = len(self.pending)
        losses = host[:k]
        bad = np.flatnonzero(~np.isfinite(losses))
        if bad.size:
            i = int(bad[0])
            step = self.pending[i][0]
            self.pending = []
            raise NonFiniteLossError(
                f"training stopped: the loss is {losses[i]} at epoch {self.epoch + 1}, step {step + 1} (batch index "
                f"{step}). Lower the learning rate, check the inputs for NaN/Inf, or run the step under "
                "autodiff.detect_anomaly() to find the op that produced it.")
        mets = host[k:].reshape(k, len(self.names)) if self.names else None
        for j, (step, n, _, _) in enumerate(self.pending):
            self.loss_sum += float(losses[j]) * n
            self.count += n
            for c, name in enumerate(self.names):
                self.sums[name] += float(mets[j, c])
        self.steps += k
        self.pending = []

    def loss(self):
        return self.loss_sum / self.count if self.count else float("nan")

    def mean(self, name):
        return self.sums[name] / self.count if self.count else float("nan")


# ----------------------------------------------------------------------------- checkpoints
def atomic_save(obj, path):
    """`autodiff.save(obj, path)` made atomic: write a temp file in the same folder, fsync it, then
    `os.replace` it over `path`. A crash mid-write leaves the previous file untouched."""
    path = os.fspath(path)
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=d)
    try:
        with os.fdopen(fd, "wb") as f:
            autodiff.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
        try:  # make the rename itself durable
            dfd = os.open(d, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError:
            pass
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def rng_state():
    """The state of every loaded CPU backend generator (JSON text, so 128-bit ints survive)."""
    out = {}
    for name, b in list(backends._instances.items()):
        r = getattr(b, "_rng", None)
        bg = getattr(r, "bit_generator", None)
        if bg is not None and isinstance(r, np.random.Generator):
            out[name] = bg.state
    return json.dumps(out)


def set_rng_state(text):
    for name, st in json.loads(text).items():
        try:
            b = backends.get_backend(name)
        except Exception:  # noqa: BLE001 - a backend not available here
            continue
        r = b.rng
        if isinstance(r, np.random.Generator):
            r.bit_generator.state = st


def make_checkpoint(model, optimizer, scheduler, epoch, loader=None, history=None, args=None):
    ck = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else {},
        "epoch": int(epoch),
        "rng": rng_state(),
        "loader": json.dumps(loader.state_dict() if loader is not None else {}),
        "history": json.dumps(history or {}),
        "args": json.dumps(args or {}),
    }
    return ck


def restore_checkpoint(ck, model, optimizer, scheduler=None, loader=None):
    """Load a checkpoint dict into the objects; returns (next_epoch, history)."""
    model.load_state_dict(ck["model"])
    optimizer.load_state_dict(ck["optimizer"])
    if scheduler is not None and ck.get("scheduler"):
        scheduler.load_state_dict(ck["scheduler"])
    if loader is not None and ck.get("loader"):
        loader.load_state_dict(json.loads(_s(ck["loader"])))
    if ck.get("rng"):
        set_rng_state(_s(ck["rng"]))
    return int(_scalar(ck["epoch"])) + 1, json.loads(_s(ck.get("history", "{}")))


def _s(x):
    if isinstance(x, bytes):
        return x.decode()
    if isinstance(x, np.ndarray):
        return str(x.item() if x.ndim == 0 else x)
    return str(x)


def _scalar(x):
    if isinstance(x, autodiff.Tensor):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.item()
    return x


# ----------------------------------------------------------------------------- loops
def _progress(total, desc, disable):
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, unit="batch", leave=True, disable=disable, dynamic_ncols=True,
                file=sys.stdout)


def train_epoch(model, loader, optimizer, loss_fn, epoch, *, scaler=None, amp_dtype=None, sync_every=1,
                verbose=True, desc=None, prep=None):
    """One pass over `loader`; returns (mean loss, accuracy, samples/s). `prep(x)` preprocesses
    each input batch (e.g. normalisation)."""
    from autodiff.ops.reduction import argmax
    model.train()
    meter = RunningMeter(epoch, sync_every, names=("correct",))
    bar = _progress(len(loader), desc or f"epoch {epoch + 1}", disable=not verbose)
    t0 = time.perf_counter()
    seen = 0
    dev_type = None
    for step, (x, y) in enumerate(loader):
        if dev_type is None:
            dev_type = x.device.type
        if prep is not None:
            x = prep(x)
        optimizer.zero_grad()
        if amp_dtype is not None:
            with autodiff.amp.autocast(dev_type, dtype=amp_dtype):
                out = model(x)
                loss = loss_fn(out, y)
        else:
            out = model(x)
            loss = loss_fn(out, y)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        with autodiff.no_grad():
            correct = (argmax(out, 1) == y).sum()
        n = x.shape[0]
        seen += n
        flushed = len(meter.pending) + 1 >= meter.sync_every
        meter.update(step, n, loss, (correct,))
        if bar is not None:
            bar.update(1)
            if flushed and (step % 10 == 0 or step == len(loader) - 1):
                el = time.perf_counter() - t0
                bar.set_postfix(loss=f"{meter.loss():.4f}", acc=f"{meter.mean('correct'):.4f}",
                                samples_s=f"{seen / el:,.0f}" if el > 0 else "-", refresh=False)
    meter.flush()
    el = time.perf_counter() - t0
    if bar is not None:
        bar.set_postfix(loss=f"{meter.loss():.4f}", acc=f"{meter.mean('correct'):.4f}",
                        samples_s=f"{seen / el:,.0f}" if el > 0 else "-", refresh=False)
        bar.close()
    return meter.loss(), meter.mean("correct"), seen / el if el > 0 else float("nan")


def evaluate(model, loader, loss_fn, prep=None):
    """(mean loss, accuracy) over `loader`, in eval mode without building a graph."""
    from autodiff.ops.reduction import argmax
    was = model.training
    model.eval()
    loss_sum = correct = None
    n = 0
    with autodiff.no_grad():
        for x, y in loader:
            if prep is not None:
                x = prep(x)
            out = model(x)
            l_ = loss_fn(out, y) * x.shape[0]
            c = (argmax(out, 1) == y).sum()
            loss_sum = l_ if loss_sum is None else loss_sum + l_
            correct = c if correct is None else correct + c
            n += x.shape[0]
    model.train(was)
    if n == 0:
        return float("nan"), float("nan")
    return float(loss_sum.item()) / n, float(correct.item()) / n


def normalize_mnist(x):
    """(x - 0.1307) / 0.3081: MNIST's pixel mean and standard deviation (as in PyTorch's example)."""
    return (x - 0.1307) / 0.3081


def plot_curves(history, path):
    """Loss and accuracy per epoch to a PNG; returns the path, or None when matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    ep = np.arange(1, len(history["train_loss"]) + 1)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    a1.plot(ep, history["train_loss"], "o-", label="train")
    a1.plot(ep, history["test_loss"], "o-", label="test")
    a1.set_xlabel("epoch")
    a1.set_ylabel("cross-entropy loss")
    a1.legend()
    a2.plot(ep, history["train_acc"], "o-", label="train")
    a2.plot(ep, history["test_acc"], "o-", label="test")
    a2.set_xlabel("epoch")
    a2.set_ylabel("accuracy")
    a2.legend()
    from matplotlib.ticker import MaxNLocator
    for ax in (a1, a2):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    a2.set_title(f"final test accuracy {history['test_acc'][-1] * 100:.2f}%")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# ----------------------------------------------------------------------------- the job
def build_parser():
    p = argparse.ArgumentParser(prog="python -m autodiff.train",
                                description="Train an MLP or a CNN on MNIST with autodiff.")
    p.add_argument("--model", choices=("mlp", "cnn"), default="mlp")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: best available)")
    p.add_argument("--backend", choices=("numpy", "numba"), default=None,
                   help="CPU backend (default: numba when it loads, else numpy)")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--optimizer", default=None, help="adam, sgd (momentum 0.9), adamw, rmsprop, ...")
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--scheduler", choices=("none", "cosine", "step"), default="cosine",
                   help="learning-rate schedule over the epochs (default: cosine annealing)")
    p.add_argument("--no-normalize", action="store_true",
                   help="feed pixels in [0, 1] instead of standardising with MNIST's mean 0.1307 / std 0.3081")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--amp", action="store_true", help="mixed precision: autocast float16 + GradScaler")
    p.add_argument("--checkpoint", default=None, help="checkpoint path (default: checkpoints/mnist_<model>.ckpt)")
    p.add_argument("--resume", action="store_true", help="continue from --checkpoint if it exists")
    p.add_argument("--data-root", default="data")
    p.add_argument("--limit", type=int, default=None, help="use only the first N training images")
    p.add_argument("--test-limit", type=int, default=None, help="use only the first N test images")
    p.add_argument("--plot", default=None, help="curve PNG path (default: bench/results/mnist_<model>_curve.png)")
    p.add_argument("--no-plot", action="store_true")
    p.add_argument("--sync-every", type=int, default=None,
                   help="read losses back every N steps (default: 1 on the CPU, 20 on a GPU)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def _make_scheduler(kind, optimizer, epochs):
    if kind == "none":
        return None
    from optim import lr_scheduler
    if kind == "cosine":
        return lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs))
    return lr_scheduler.StepLR(optimizer, step_size=max(1, epochs // 3), gamma=0.1)


def run(args=None, train_set=None, test_set=None, model=None, stop_after=None, log=print):
    """Run the job described by `args` (a list of CLI strings or an argparse Namespace).

    `train_set` / `test_set` replace MNIST (any dataset of (image, label)); `model` replaces the
    built-in one; `stop_after=k` stops after k epochs of this call (to simulate an interrupted run
    in tests). Returns a dict: history, test_acc, epoch_times, checkpoint, plot.
    """
    if args is None or isinstance(args, (list, tuple)):
        args = build_parser().parse_args(args)
    prev_backend = backends.get_cpu_backend().name
    try:
        return _run(args, train_set, test_set, model, stop_after, log)
    finally:
        autodiff.set_backend(prev_backend)  # the CPU backend choice is global: leave it as found


def _run(args, train_set, test_set, model, stop_after, log):
    import nn

    d = DEFAULTS[args.model]
    epochs = args.epochs if args.epochs is not None else d["epochs"]
    bs = args.batch_size if args.batch_size is not None else d["batch_size"]
    lr = args.lr if args.lr is not None else d["lr"]
    opt_name = args.optimizer or d["optimizer"]
    dev = autodiff.device(args.device or best_device())
    backend = args.backend or best_cpu_backend()
    autodiff.set_backend(backend)
    sync_every = args.sync_every or (1 if dev.type == "cpu" else 20)

    from autodiff.data import MNIST, DataLoader, Subset
    if train_set is None:
        train_set = MNIST(args.data_root, train=True)
    if test_set is None:
        test_set = MNIST(args.data_root, train=False)
    if args.limit:
        train_set = Subset(train_set, range(min(args.limit, len(train_set))))
    if args.test_limit:
        test_set = Subset(test_set, range(min(args.test_limit, len(test_set))))

    autodiff.manual_seed(args.seed)
    if model is None:
        model = make_model(args.model)
    model.to(dev)
    optimizer = make_optimizer(opt_name, model.parameters(), lr, args.momentum, args.weight_decay)
    scheduler = _make_scheduler(args.scheduler, optimizer, epochs)
    loss_fn = nn.CrossEntropyLoss()
    train_loader = DataLoader(train_set, batch_size=bs, shuffle=True, seed=args.seed, device=dev)
    test_loader = DataLoader(test_set, batch_size=1000, device=dev)
    prep = None if args.no_normalize else normalize_mnist
    scaler = amp_dtype = None
    if args.amp:
        amp_dtype = autodiff.float16
        scaler = autodiff.amp.GradScaler(dev.type)

    ckpt = args.checkpoint or os.path.join("checkpoints", f"mnist_{args.model}.ckpt")
    history = {"train_loss": [], "train_acc": [], "test_loss": [], "test_acc": [], "epoch_time": []}
    start = 0
    if args.resume and os.path.isfile(ckpt):
        start, h = restore_checkpoint(autodiff.load(ckpt), model, optimizer, scheduler, train_loader)
        history.update(h)
        log(f"resumed from {ckpt} at epoch {start + 1}")
    elif args.resume:
        log(f"no checkpoint at {ckpt}; starting from scratch")

    verbose = not args.quiet
    log(f"training {args.model} on {len(train_set)} images ({len(test_set)} test) | device {dev} | backend "
        f"{backend if dev.type == 'cpu' else 'cupy'} | {opt_name} lr {lr} | batch {bs} | epochs {epochs}"
        f"{' | amp float16' if args.amp else ''}")
    done = 0
    for epoch in range(start, epochs):
        if stop_after is not None and done >= stop_after:
            break
        t0 = time.perf_counter()
        tl, ta, sps = train_epoch(model, train_loader, optimizer, loss_fn, epoch, scaler=scaler,
                                  amp_dtype=amp_dtype, sync_every=sync_every, verbose=verbose,
                                  desc=f"epoch {epoch + 1}/{epochs}", prep=prep)
        if scheduler is not None:
            scheduler.step()
        t_train = time.perf_counter() - t0
        vl, va = evaluate(model, test_loader, loss_fn, prep)
        for k, v in (("train_loss", tl), ("train_acc", ta), ("test_loss", vl), ("test_acc", va),
                     ("epoch_time", t_train)):
            history[k].append(float(v))
        atomic_save(make_checkpoint(model, optimizer, scheduler, epoch, train_loader, history,
                                    {"model": args.model, "optimizer": opt_name, "lr": lr, "batch_size": bs}),
                    ckpt)
        log(f"epoch {epoch + 1}/{epochs}: train loss {tl:.4f} acc {ta:.4f} | test loss {vl:.4f} acc {va:.4f} | "
            f"{t_train:.2f} s/epoch ({sps:,.0f} samples/s)")
        done += 1
    res = {"history": history, "checkpoint": ckpt, "model": model, "optimizer": optimizer, "plot": None,
           "test_acc": history["test_acc"][-1] if history["test_acc"] else float("nan"),
           "epoch_times": list(history["epoch_time"])}
    if history["test_acc"]:
        times = history["epoch_time"]
        log(f"final test accuracy {res['test_acc'] * 100:.2f}% after {len(times)} epochs; time per epoch "
            f"{np.mean(times):.2f} s (median {np.median(times):.2f} s); checkpoint {ckpt}")
    if history["test_acc"] and not args.no_plot:
        path = args.plot or os.path.join("bench", "results", f"mnist_{args.model}_curve.png")
        res["plot"] = plot_curves(history, path)
        log(f"curve written to {path}" if res["plot"] else
            "note: matplotlib is not installed, so no curve PNG was written (pip install matplotlib)")
    return res


def main(argv=None):
    try:
        res = run(argv)
    except NonFiniteLossError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # a missing dataset explains `make data`
        from autodiff.data import DataError
        if isinstance(e, DataError):
            print(f"error: {e}", file=sys.stderr)
            return 1
        raise
    return 0 if not math.isnan(res["test_acc"]) else 1


if __name__ == "__main__":
    sys.exit(main())
