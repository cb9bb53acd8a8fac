"""Keras-style high-level API on `nn.Module`: `compile`, `fit`, `evaluate`, `predict`, and callbacks.

    model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x_train, y_train, epochs=10, batch_size=128, validation_data=(x_val, y_val),
                        callbacks=[nn.callbacks.EarlyStopping(patience=2)])
    model.evaluate(x_test, y_test)          # [loss, accuracy]  (a float when there are no metrics)
    probs = model.predict(x_test)           # a NumPy array

`Module` inherits these methods from `KerasMixin`. Inputs are NumPy arrays, Tensors, or (for `x`)
a `DataLoader` / iterable of `(x, y)` batches; `predict` returns NumPy arrays. Floating inputs are
cast to the model's parameter dtype and moved to its device; integer targets become int64.

Optimizers by name (`'sgd' 'adam' 'adamw' 'rmsprop' 'adagrad' 'adadelta' 'adamax' 'nadam' 'radam'`,
built with `optim`'s PyTorch defaults except SGD's learning rate, Keras's 0.01), an
`optim.Optimizer` instance, or a callable `params -> optimizer`.

Losses by name: `'sparse_categorical_crossentropy'` (integer class targets) and
`'categorical_crossentropy'` (one-hot / probability targets) treat the model's output as logits,
unless the model ends with `nn.Softmax` (then as probabilities, as Keras's default
`from_logits=False`); `'binary_crossentropy'` likewise (logits unless it ends with `nn.Sigmoid`);
`'mse'`/`'mean_squared_error'`, `'mae'`/`'mean_absolute_error'`, `'huber'`, `'kld'`. Or any `nn`
loss module or callable `(output, target) -> scalar Tensor`.

Metrics: `'accuracy'`/`'acc'` (chosen from the loss and target shapes like Keras: sparse,
categorical or binary), `'sparse_categorical_accuracy'`, `'categorical_accuracy'`,
`'binary_accuracy'`, `'mse'`, `'mae'`, or a callable `(y_pred, y_true) -> Tensor` of the batch mean.
Logged names follow Keras (`loss`, `accuracy`, `val_loss`, `val_accuracy`); `history.history`
maps each to a list with one value per epoch. Training metrics are running means over the epoch.

`verbose=0` is silent, `1` shows a progress bar per epoch (tqdm when installed), `2` prints one
line per epoch. A NaN/Inf loss stops `fit` with `autodiff.train.NonFiniteLossError` naming the
epoch and step (Keras's `TerminateOnNaN`, made an error so it cannot go unnoticed).
"""
from __future__ import annotations

import csv
import math
import os
import sys
import time
import types
import warnings

import numpy as np


# ----------------------------------------------------------------------------- callbacks
class Callback:
    """Base class: override any of the `on_*` methods. `self.model` and `self.params` are set by fit."""

    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_train_batch_begin(self, batch, logs=None):
        pass

    def on_train_batch_end(self, batch, logs=None):
        pass


class History(Callback):
    """Records the logs of each epoch: `history.history['loss']` is the list of epoch losses."""

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_train_begin(self, logs=None):
        self.epoch = []
        self.history = {}

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)


def _monitor_mode(monitor, mode, who):
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"{who}: mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "auto":
        mode = "max" if ("acc" in monitor or monitor.startswith("fmeasure") or "auc" in monitor) else "min"
    return mode


class EarlyStopping(Callback):
    """Stop when `monitor` has not improved by more than `min_delta` for `patience` epochs;
    optionally restore the weights of the best epoch (Keras's arguments and defaults)."""

    def __init__(self, monitor="val_loss", min_delta=0.0, patience=0, verbose=0, mode="auto", baseline=None,
                 restore_best_weights=False, start_from_epoch=0):
        super().__init__()
        self.monitor = monitor
        self.patience = int(patience)
        self.verbose = verbose
        self.baseline = baseline
        self.min_delta = abs(min_delta)
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = start_from_epoch
        self.mode = _monitor_mode(monitor, mode, "EarlyStopping")
        self.stopped_epoch = 0
        self.best_epoch = 0

    def _better(self, current, reference):
        if self.mode == "min":
            return current + self.min_delta < reference
        return current - self.min_delta > reference

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.stopped_epoch = 0
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_weights = None
        self.best_epoch = 0

    def on_epoch_end(self, epoch, logs=None):
        current = (logs or {}).get(self.monitor)
        if current is None:
            warnings.warn(f"EarlyStopping: metric {self.monitor!r} is not available; available metrics are "
                          f"{', '.join(sorted(logs or {}))}", stacklevel=2)
            return
        if epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = _copy_state(self.model)
        self.wait += 1
        if self._better(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = _copy_state(self.model)
            if self.baseline is None or self._better(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None and self.stopped_epoch > 0:
            if self.verbose > 0:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.load_state_dict(self.best_weights)


def _copy_state(model):
    return {k: v.clone() if hasattr(v, "clone") else np.array(v, copy=True) for k, v in model.state_dict().items()}


class ModelCheckpoint(Callback):
    """Save the model's state dict with `autodiff.save` (atomic; never pickles code) at the end of
    each epoch, or only when `monitor` improves (`save_best_only`). `filepath` may hold format
    fields such as `{epoch:02d}` and `{val_loss:.3f}` (epoch counts from 1, as Keras).
    `save_weights_only=False` also stores the optimizer state: `{'model': ..., 'optimizer': ...}`."""

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False, save_weights_only=False,
                 mode="auto", save_freq="epoch", initial_value_threshold=None):
        super().__init__()
        if save_freq != "epoch":
            raise ValueError(f"ModelCheckpoint: only save_freq='epoch' is supported, got {save_freq!r}")
        self.filepath = os.fspath(filepath)
        self.monitor = monitor
        self.verbose = verbose
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.mode = _monitor_mode(monitor, mode, "ModelCheckpoint")
        self.best = initial_value_threshold if initial_value_threshold is not None else (
            math.inf if self.mode == "min" else -math.inf)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        path = self.filepath.format(epoch=epoch + 1, **logs)
        if self.save_best_only:
            current = logs.get(self.monitor)
            if current is None:
                warnings.warn(f"ModelCheckpoint: can save best model only with {self.monitor!r} available, "
                              "skipping", stacklevel=2)
                return
            better = current < self.best if self.mode == "min" else current > self.best
            if not better:
                if self.verbose > 0:
                    print(f"Epoch {epoch + 1}: {self.monitor} did not improve from {self.best:.5f}")
                return
            if self.verbose > 0:
                print(f"Epoch {epoch + 1}: {self.monitor} improved from {self.best:.5f} to {current:.5f}, "
                      f"saving model to {path}")
            self.best = current
        elif self.verbose > 0:
            print(f"Epoch {epoch + 1}: saving model to {path}")
        from autodiff.train import atomic_save
        state = self.model.state_dict()
        if not self.save_weights_only and getattr(self.model, "optimizer", None) is not None:
            state = {"model": state, "optimizer": self.model.optimizer.state_dict(), "epoch": epoch}
        atomic_save(state, path)


class CSVLogger(Callback):
    """Stream the epoch logs to a CSV file (`epoch` first, then the sorted log keys)."""

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.filename = os.fspath(filename)
        self.sep = separator
        self.append = append
        self.keys = None
        self._file = None

    def on_train_begin(self, logs=None):
        exists = self.append and os.path.isfile(self.filename) and os.path.getsize(self.filename) > 0
        self._file = open(self.filename, "a" if self.append else "w", newline="")
        self._writer = None
        self._header_done = exists
        if exists:
            with open(self.filename, newline="") as f:
                first = next(csv.reader(f, delimiter=self.sep), None)
            if first:
                self.keys = [k for k in first if k != "epoch"]

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
        if self._writer is None:
            self._writer = csv.writer(self._file, delimiter=self.sep)
            if not self._header_done:
                self._writer.writerow(["epoch"] + self.keys)
                self._header_done = True
        self._writer.writerow([epoch] + [logs.get(k, "NA") for k in self.keys])
        self._file.flush()

    def on_train_end(self, logs=None):
        if self._file is not None:
            self._file.close()
            self._file = None


class LearningRateScheduler(Callback):
    """At the start of each epoch set the learning rate of every param group to
    `schedule(epoch, lr)` (or `schedule(epoch)`); the value is logged as `lr`."""

    def __init__(self, schedule, verbose=0):
        super().__init__()
        self.schedule = schedule
        self.verbose = verbose

    def on_epoch_begin(self, epoch, logs=None):
        opt = self.model.optimizer
        lr = float(opt.param_groups[0]["lr"])
        try:
            new = self.schedule(epoch, lr)
        except TypeError:
            new = self.schedule(epoch)
        new = float(new)
        if not math.isfinite(new):
            raise ValueError(f"LearningRateScheduler: the schedule returned {new} at epoch {epoch}")
        for g in opt.param_groups:
            g["lr"] = new
        if self.verbose > 0:
            print(f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate to {new}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["lr"] = float(self.model.optimizer.param_groups[0]["lr"])


class TerminateOnNaN(Callback):
    """Kept for Keras compatibility: fit already stops on a NaN/Inf loss (with an error)."""


# `nn.callbacks.EarlyStopping` etc. (like `keras.callbacks`); also importable as `nn.callbacks`.
callbacks = types.ModuleType("nn.callbacks", "Keras-style callbacks for Module.fit (see nn/keras.py).")
for _c in (Callback, History, EarlyStopping, ModelCheckpoint, CSVLogger, LearningRateScheduler, TerminateOnNaN):
    setattr(callbacks, _c.__name__, _c)
sys.modules.setdefault("nn.callbacks", callbacks)


# ----------------------------------------------------------------------------- losses / metrics / optimizers
_OPTIMIZERS = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop", "adagrad": "Adagrad",
               "adadelta": "Adadelta", "adamax": "Adamax", "nadam": "NAdam", "radam": "RAdam", "lion": "Lion"}


def _last_module(model):
    mods = list(model.modules())
    leaves = [m for m in mods if not list(m.children())]
    return leaves[-1] if leaves else None


def _make_optimizer(spec, model):
    import optim
    if isinstance(spec, optim.Optimizer):
        return spec
    if isinstance(spec, str):
        key = spec.lower()
        if key not in _OPTIMIZERS or not hasattr(optim, _OPTIMIZERS[key]):
            avail = sorted(k for k, v in _OPTIMIZERS.items() if hasattr(optim, v))
            raise ValueError(f"compile: unknown optimizer {spec!r}; available: {', '.join(avail)}")
        cls = getattr(optim, _OPTIMIZERS[key])
        kw = {"lr": 0.01} if key == "sgd" else {}
        return cls(model.parameters(), **kw)
    if isinstance(spec, type) and issubclass(spec, optim.Optimizer):
        return spec(model.parameters())
    if callable(spec):
        return spec(model.parameters())
    raise TypeError(f"compile: optimizer must be a name, an optim.Optimizer or a callable, got "
                    f"{type(spec).__name__}")


def _make_loss(spec, model):
    """Returns (callable(out, y) -> Tensor, kind) with kind in sparse|categorical|binary|regression|custom."""
    import nn
    import nn.functional as F
    import autodiff
    if not isinstance(spec, str):
        if spec is None:
            raise ValueError("compile: a loss is required (e.g. loss='sparse_categorical_crossentropy')")
        if isinstance(spec, (nn.CrossEntropyLoss, nn.NLLLoss)):
            return spec, "sparse"
        if isinstance(spec, (nn.BCELoss, nn.BCEWithLogitsLoss)):
            return spec, "binary"
        if callable(spec):
            return spec, "custom"
        raise TypeError(f"compile: loss must be a name or a callable, got {type(spec).__name__}")
    key = spec.lower()
    last = _last_module(model)
    probs = isinstance(last, getattr(nn, "Softmax", ()))
    sig = isinstance(last, getattr(nn, "Sigmoid", ()))
    if key in ("sparse_categorical_crossentropy", "cross_entropy", "crossentropy"):
        if probs:
            return (lambda out, y: F.nll_loss(autodiff.log(autodiff.clamp(out, 1e-7, 1.0)), y)), "sparse"
        return nn.CrossEntropyLoss(), "sparse"
    if key == "categorical_crossentropy":
        if probs:
            return (lambda out, y: -(y * autodiff.log(autodiff.clamp(out, 1e-7, 1.0))).sum(1).mean()), "categorical"
        return nn.CrossEntropyLoss(), "categorical"  # probability targets
    if key == "binary_crossentropy":
        return (nn.BCELoss() if sig else nn.BCEWithLogitsLoss()), "binary"
    if key in ("mse", "mean_squared_error"):
        return nn.MSELoss(), "regression"
    if key in ("mae", "mean_absolute_error"):
        return nn.L1Loss(), "regression"
    if key == "huber":
        return nn.HuberLoss(), "regression"
    if key in ("kld", "kl_divergence", "kullback_leibler_divergence"):
        return (lambda out, y: F.kl_div(autodiff.log(autodiff.clamp(out, 1e-7, 1.0)), y, reduction="batchmean")), \
            "regression"
    raise ValueError(f"compile: unknown loss {spec!r}; use 'sparse_categorical_crossentropy', "
                     "'categorical_crossentropy', 'binary_crossentropy', 'mse', 'mae', 'huber', 'kld', an nn loss "
                     "module or a callable")


def _make_metric(spec, loss_kind, model):
    """Returns (name, fn(out, y) -> 0-d Tensor: the SUM over the batch of the per-sample metric)."""
    import nn
    from autodiff.ops.reduction import argmax
    if callable(spec) and not isinstance(spec, str):
        name = getattr(spec, "__name__", type(spec).__name__)
        return name, lambda out, y: spec(out, y) * out.shape[0]
    if not isinstance(spec, str):
        raise TypeError(f"compile: a metric must be a name or a callable, got {type(spec).__name__}")
    key = spec.lower()
    last = _last_module(model)
    sig = isinstance(last, getattr(nn, "Sigmoid", ()))

    def sparse(out, y):
        return (argmax(out, -1) == y).sum()

    def categorical(out, y):
        return (argmax(out, -1) == argmax(y, -1)).sum()

    def binary(out, y):
        thr = 0.5 if sig else 0.0
        return ((out > thr) == (y > 0.5)).to(out.dtype).mean() * out.shape[0]

    if key in ("accuracy", "acc"):
        def auto(out, y):
            if loss_kind == "binary" or (out.ndim >= 1 and out.shape[-1] == 1 and out.ndim == y.ndim):
                return binary(out, y)
            if y.ndim == out.ndim:
                return categorical(out, y)
            return sparse(out, y)
        return spec, auto
    table = {"sparse_categorical_accuracy": sparse, "categorical_accuracy": categorical, "binary_accuracy": binary,
             "mse": lambda o, y: ((o - y) ** 2).mean() * o.shape[0],
             "mean_squared_error": lambda o, y: ((o - y) ** 2).mean() * o.shape[0],
             "mae": lambda o, y: (o - y).abs().mean() * o.shape[0],
             "mean_absolute_error": lambda o, y: (o - y).abs().mean() * o.shape[0]}
    if key not in table:
        raise ValueError(f"compile: unknown metric {spec!r}; use 'accuracy', {', '.join(repr(k) for k in table)} "
                         "or a callable")
    return spec, table[key]


# ----------------------------------------------------------------------------- data plumbing
def _model_device_dtype(model):
    import autodiff
    for p in model.parameters():
        return p.device, p.dtype
    return autodiff.device("cpu"), np.dtype(np.float32)


def _as_array(a, what, float_dtype):
    import autodiff
    if isinstance(a, autodiff.Tensor):
        a = a.detach().numpy() if a.device.type == "cpu" else a.detach()
        if isinstance(a, autodiff.Tensor):
            return a  # device tensor: keep it there
    a = np.asarray(a)
    if a.dtype.kind == "f" and a.dtype != float_dtype:
        a = a.astype(float_dtype)
    elif a.dtype.kind in "iu":
        a = a.astype(np.int64)
    elif a.dtype.kind == "b" and what == "y":
        a = a.astype(float_dtype)
    elif a.dtype.kind not in "fiub":
        raise TypeError(f"fit: {what} has dtype {a.dtype}; expected numeric data")
    return a


def _loader(x, y, batch_size, shuffle, seed, model, what="fit"):
    """A DataLoader over (x, y) NumPy/Tensor data on the model's device, or x itself if it already
    yields batches (a DataLoader or any iterable of (x, y))."""
    import autodiff
    from autodiff.data import DataLoader, TensorDataset
    dev, dt = _model_device_dtype(model)
    if y is None and not isinstance(x, (np.ndarray, autodiff.Tensor, list)):
        return x  # batches already
    xa = _as_array(x, "x", dt)
    if y is None:
        ds = TensorDataset(autodiff.Tensor(xa) if not isinstance(xa, autodiff.Tensor) else xa)
    else:
        ya = _as_array(y, "y", dt)
        if len(xa) != len(ya):
            raise ValueError(f"{what}: x and y have different numbers of samples: x has shape {tuple(xa.shape)}, "
                             f"y has shape {tuple(ya.shape)}")
        ds = TensorDataset(*(a if isinstance(a, autodiff.Tensor) else autodiff.Tensor(a) for a in (xa, ya)))
    return DataLoader(ds, batch_size=batch_size or 32, shuffle=shuffle, seed=seed, device=dev)


def _progress(total, desc, verbose):
    if verbose != 1:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, unit="batch", leave=True, dynamic_ncols=True, file=sys.stdout)


def _fmt(logs):
    return " - ".join(f"{k}: {v:.4f}" if isinstance(v, float) else f"{k}: {v}" for k, v in logs.items())


# ----------------------------------------------------------------------------- the mixin
class _yields_to_submodules:
    """A method that a submodule, parameter or buffer of the same name hides, so that PyTorch code
    naming a layer `self.predict` or `self.fit` keeps working (Module keeps those in dicts that
    normal attribute lookup would otherwise reach only after the class's methods)."""

    def __init__(self, fn):
        self.fn = fn
        self.name = fn.__name__
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self.fn
        d = obj.__dict__
        for store in ("_modules", "_parameters", "_buffers"):
            m = d.get(store)
            if m is not None and self.name in m:
                return m[self.name]
        return self.fn.__get__(obj, objtype)


class KerasMixin:
    """`compile` / `fit` / `evaluate` / `predict` for `nn.Module` (see the module docstring)."""

    @_yields_to_submodules
    def compile(self, optimizer=None, loss=None, metrics=None, loss_weights=None, **kwargs):
        """Configure training (Keras). The loss is required; the optimizer defaults to Keras's 'rmsprop'.

        Called with no Keras arguments at all (`model.compile()`, or only `torch.compile` options such
        as `fullgraph=`/`backend=`), it is PyTorch's `Module.compile`, which has nothing to do in this
        eager engine: a no-op returning None.
        """
        torch_opts = ("fullgraph", "dynamic", "backend", "mode", "options", "disable")
        if optimizer is None and loss is None and metrics is None and loss_weights is None and \
                all(k in torch_opts for k in kwargs):
            return None
        if optimizer is None:
            optimizer = "rmsprop"
        if kwargs:
            unknown = sorted(k for k in kwargs if k not in ("run_eagerly", "jit_compile", "steps_per_execution"))
            if unknown:
                raise TypeError(f"compile: unexpected arguments {unknown}")
        if loss_weights is not None:
            raise ValueError("compile: loss_weights (multi-output models) is not supported")
        opt = _make_optimizer(optimizer, self)
        loss_fn, kind = _make_loss(loss, self)
        if isinstance(metrics, (str,)) or callable(metrics):
            metrics = [metrics]
        mets = [_make_metric(m, kind, self) for m in (metrics or [])]
        object.__setattr__(self, "optimizer", opt)
        object.__setattr__(self, "_keras", {"loss": loss_fn, "kind": kind, "metrics": mets})
        object.__setattr__(self, "stop_training", False)
        return None

    def _keras_config(self, who):
        cfg = self.__dict__.get("_keras")
        if cfg is None:
            raise RuntimeError(f"{who}: call model.compile(optimizer=..., loss=...) first")
        return cfg

    @_yields_to_submodules
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose=1, callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, initial_epoch=0, seed=None, sync_every=None):
        """Train for `epochs` epochs; returns a `History` (also stored as `model.history`).

        `validation_split` holds out the LAST fraction of the samples (before shuffling, as Keras).
        `seed` makes the shuffling reproducible (default: drawn from autodiff's global generator).
        """
        import autodiff
        from autodiff.train import RunningMeter
        cfg = self._keras_config("fit")
        if verbose == "auto":
            verbose = 1
        if verbose not in (0, 1, 2):
            raise ValueError(f"fit: verbose must be 0, 1 or 2, got {verbose!r}")
        if x is None:
            raise ValueError("fit: x is required")
        if validation_split and validation_data is None:
            if y is None:
                raise ValueError("fit: validation_split needs array inputs x and y")
            if not 0.0 < validation_split < 1.0:
                raise ValueError(f"fit: validation_split must be in (0, 1), got {validation_split}")
            n = len(x)
            cut = int(n * (1.0 - validation_split))
            validation_data = (x[cut:], y[cut:])
            x, y = x[:cut], y[:cut]
        loader = _loader(x, y, batch_size, shuffle, seed, self)
        val_loader = None
        if validation_data is not None:
            if isinstance(validation_data, (tuple, list)):
                if len(validation_data) != 2:
                    raise ValueError("fit: validation_data must be (x_val, y_val)")
                val_loader = _loader(validation_data[0], validation_data[1], batch_size, False, None, self)
            else:
                val_loader = validation_data

        history = History()
        cbs = list(callbacks or []) + [history]  # History last: it sees the logs other callbacks add
        try:
            steps = len(loader)
        except TypeError:
            steps = None
        params = {"verbose": verbose, "epochs": epochs, "steps": steps}
        for cb in cbs:
            cb.set_model(self)
            cb.set_params(params)
        object.__setattr__(self, "history", history)
        object.__setattr__(self, "stop_training", False)
        opt, loss_fn, mets = self.optimizer, cfg["loss"], cfg["metrics"]
        names = tuple(n for n, _ in mets)
        dev, _ = _model_device_dtype(self)
        sync = sync_every or (1 if dev.type == "cpu" else 20)

        for cb in cbs:
            cb.on_train_begin()
        for epoch in range(initial_epoch, epochs):
            for cb in cbs:
                cb.on_epoch_begin(epoch)
            if verbose == 1:
                print(f"Epoch {epoch + 1}/{epochs}")
            self.train()
            meter = RunningMeter(epoch, sync, names)
            bar = _progress(steps, f"{epoch + 1}/{epochs}", verbose)
            t0 = time.perf_counter()
            for step, batch in enumerate(loader):
                xb, yb = batch[0], batch[1]
                for cb in cbs:
                    cb.on_train_batch_begin(step)
                opt.zero_grad()
                out = self(xb)
                loss = loss_fn(out, yb)
                loss.backward()
                opt.step()
                with autodiff.no_grad():
                    mvals = [fn(out, yb) for _, fn in mets]
                meter.update(step, xb.shape[0], loss, mvals)
                if bar is not None:
                    bar.update(1)
                    if not meter.pending and (step % 10 == 0 or step + 1 == steps):
                        bar.set_postfix({"loss": f"{meter.loss():.4f}",
                                         **{n: f"{meter.mean(n):.4f}" for n in names}}, refresh=False)
                for cb in cbs[:-1]:
                    if type(cb).on_train_batch_end is not Callback.on_train_batch_end:
                        meter.flush()
                        cb.on_train_batch_end(step, {"loss": meter.loss(), **{n: meter.mean(n) for n in names}})
            meter.flush()
            logs = {"loss": meter.loss(), **{n: meter.mean(n) for n in names}}
            if val_loader is not None:
                vals = self._run_eval(val_loader, cfg)
                logs["val_loss"] = vals[0]
                for n, v in zip(names, vals[1:]):
                    logs["val_" + n] = v
            el = time.perf_counter() - t0
            if bar is not None:
                bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()}, refresh=False)
                bar.close()
            for cb in cbs:
                cb.on_epoch_end(epoch, logs)
            if verbose == 2 or (verbose == 1 and bar is None):
                print(f"Epoch {epoch + 1}/{epochs} - {el:.2f}s - {_fmt(logs)}")
            if self.stop_training:
                break
        for cb in cbs:
            cb.on_train_end()
        return history

    def _run_eval(self, loader, cfg):
        import autodiff
        loss_fn, mets = cfg["loss"], cfg["metrics"]
        was = self.training
        self.eval()
        total = None
        n = 0
        try:
            with autodiff.no_grad():
                for batch in loader:
                    xb, yb = batch[0], batch[1]
                    out = self(xb)
                    vals = [loss_fn(out, yb).to(autodiff.float64) * xb.shape[0]] + \
                        [fn(out, yb).to(autodiff.float64) for _, fn in mets]
                    total = vals if total is None else [a + b for a, b in zip(total, vals)]
                    n += xb.shape[0]
        finally:
            self.train(was)
        if n == 0:
            return [float("nan")] * (1 + len(mets))
        from autodiff.ops.shape import stack
        host = stack([t.reshape(()) for t in total]).numpy()
        return [float(v) / n for v in host]

    @_yields_to_submodules
    def evaluate(self, x=None, y=None, batch_size=None, verbose=1, return_dict=False):
        """Loss (and metrics) on (x, y): a float without metrics, else `[loss, metric, ...]`
        (a dict with `return_dict=True`)."""
        cfg = self._keras_config("evaluate")
        loader = _loader(x, y, batch_size, False, None, self, what="evaluate")
        t0 = time.perf_counter()
        vals = self._run_eval(loader, cfg)
        names = ["loss"] + [n for n, _ in cfg["metrics"]]
        logs = dict(zip(names, vals))
        if verbose:
            print(f"evaluate - {time.perf_counter() - t0:.2f}s - {_fmt(logs)}")
        if return_dict:
            return logs
        return vals[0] if len(vals) == 1 else vals

    @_yields_to_submodules
    def predict(self, x, batch_size=None, verbose=0):
        """The model's outputs for `x` as a NumPy array (concatenated over batches), in eval mode and
        without building a graph."""
        import autodiff
        loader = _loader(x, None, batch_size, False, None, self, what="predict")
        was = self.training
        self.eval()
        outs = []
        try:
            with autodiff.no_grad():
                for batch in loader:
                    xb = batch[0] if isinstance(batch, (list, tuple)) else batch
                    outs.append(self(xb).detach())
        finally:
            self.train(was)
        if not outs:
            return np.empty((0,), dtype=np.float32)
        from autodiff.ops.shape import cat
        res = cat(outs, 0) if len(outs) > 1 else outs[0]
        if verbose:
            print(f"predict - {len(outs)} batches")
        return res.numpy()
