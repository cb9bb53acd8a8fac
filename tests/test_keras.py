"""Keras-style compile / fit / evaluate / predict and the callbacks, on small synthetic data."""
import csv

import numpy as np
import pytest

import autodiff
import nn
import optim
from autodiff.train import NonFiniteLossError


def _blobs(n=240, d=4, k=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=4.0, size=(k, d))
    y = rng.integers(0, k, n)
    x = centers[y] + rng.normal(size=(n, d))
    return x.astype(np.float32), y


def _model(d=4, k=3, last=None):
    layers = [nn.Linear(d, 16), nn.ReLU(), nn.Linear(16, k)]
    if last is not None:
        layers.append(last)
    return nn.Sequential(*layers)


def test_fit_evaluate_predict(device):
    x, y = _blobs()
    m = _model().to(device)
    assert m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"]) is None
    h = m.fit(x, y, epochs=8, batch_size=32, validation_data=(x[:60], y[:60]), verbose=0, seed=0)
    assert set(h.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 8 for v in h.history.values()) and h.epoch == list(range(8))
    assert h.history["loss"][-1] < h.history["loss"][0]
    assert h.history["accuracy"][-1] > 0.9 and m.history is h
    loss, acc = m.evaluate(x, y, verbose=0)
    assert isinstance(loss, float) and acc > 0.9
    d = m.evaluate(x, y, verbose=0, return_dict=True)
    assert set(d) == {"loss", "accuracy"} and d["accuracy"] == pytest.approx(acc)
    p = m.predict(x)
    assert isinstance(p, np.ndarray) and p.shape == (len(x), 3) and p.dtype == np.float32
    assert (p.argmax(1) == y).mean() == pytest.approx(acc)
    assert m.training  # evaluate/predict restore the mode


def test_fit_is_reproducible_with_seed():
    x, y = _blobs()
    outs = []
    for _ in range(2):
        autodiff.manual_seed(1)
        m = _model()
        m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        m.fit(x, y, epochs=2, batch_size=16, verbose=0, seed=5)
        outs.append(m.predict(x))
    np.testing.assert_array_equal(outs[0], outs[1])


def test_compile_options_and_errors():
    x, y = _blobs(60)
    m = _model()
    with pytest.raises(RuntimeError, match="compile"):
        m.fit(x, y, verbose=0)
    opt = optim.SGD(m.parameters(), lr=0.1)
    m.compile(optimizer=opt, loss=nn.CrossEntropyLoss(), metrics="accuracy")
    assert m.optimizer is opt
    m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    assert m.optimizer.param_groups[0]["lr"] == 0.01
    assert m.evaluate(x, y, verbose=0) > 0  # a float when there are no metrics
    m.compile(optimizer=lambda ps: optim.Adam(ps, lr=0.01), loss=lambda out, t: nn.functional.cross_entropy(out, t))
    m.fit(x, y, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="unknown optimizer 'adamz'"):
        m.compile(optimizer="adamz", loss="mse")
    with pytest.raises(ValueError, match="unknown loss 'foo'"):
        m.compile(loss="foo")
    with pytest.raises(ValueError, match="unknown metric 'bar'"):
        m.compile(loss="mse", metrics=["bar"])
    with pytest.raises(ValueError, match="loss is required"):
        m.compile(optimizer="adam")
    assert _model().compile() is None  # PyTorch's Module.compile(): nothing to do in an eager engine
    assert _model().compile(fullgraph=True) is None
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="different numbers of samples"):
        m.fit(x, y[:10], verbose=0)
    with pytest.raises(ValueError, match="verbose"):
        m.fit(x, y, verbose=3)


def test_softmax_output_and_categorical_targets():
    x, y = _blobs()
    onehot = np.eye(3, dtype=np.float32)[y]
    m = _model(last=nn.Softmax(dim=1))
    m.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy", "categorical_accuracy"])
    h = m.fit(x, onehot, epochs=6, batch_size=32, verbose=0, seed=0)
    assert h.history["accuracy"] == h.history["categorical_accuracy"]
    p = m.predict(x)
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-5)
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["acc"])
    assert m.evaluate(x, y, verbose=0)[1] > 0.8


def test_binary_and_regression():
    x, y = _blobs(k=2)
    yb = y.astype(np.float32)[:, None]
    m = _model(k=1)
    m.compile(optimizer=lambda ps: optim.Adam(ps, lr=0.01), loss="binary_crossentropy", metrics=["accuracy"])
    m.fit(x, yb, epochs=6, batch_size=32, verbose=0, seed=0)
    assert m.evaluate(x, yb, verbose=0)[1] > 0.9
    m2 = _model(k=1, last=nn.Sigmoid())
    m2.compile(optimizer=lambda ps: optim.Adam(ps, lr=0.01), loss="binary_crossentropy",
               metrics=["binary_accuracy"])
    m2.fit(x, yb, epochs=6, batch_size=32, verbose=0, seed=0)
    assert m2.evaluate(x, yb, verbose=0)[1] > 0.9
    r = _model(k=1)
    r.compile(optimizer="adam", loss="mse", metrics=["mae"])
    h = r.fit(x, yb * 2 - 1, epochs=4, batch_size=32, verbose=0, seed=0)
    assert set(h.history) == {"loss", "mae"} and h.history["loss"][-1] < h.history["loss"][0]


def test_validation_split_uses_last_samples():
    x, y = _blobs(100)
    m = _model()
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    h = m.fit(x, y, epochs=1, validation_split=0.25, verbose=0)
    ev = m.evaluate(x[75:], y[75:], verbose=0)
    assert h.history["val_loss"][0] == pytest.approx(ev[0], rel=1e-6)
    with pytest.raises(ValueError, match="validation_split"):
        m.fit(x, y, validation_split=1.5, verbose=0)


def test_fit_accepts_a_dataloader_and_tensors():
    from autodiff.data import DataLoader, TensorDataset
    x, y = _blobs(64)
    m = _model()
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    dl = DataLoader(TensorDataset(autodiff.tensor(x), autodiff.tensor(y)), batch_size=16, shuffle=True, seed=0)
    h = m.fit(dl, epochs=2, verbose=0, validation_data=dl)
    assert len(h.history["val_accuracy"]) == 2
    h = m.fit(autodiff.tensor(x), autodiff.tensor(y), epochs=1, verbose=0)
    assert len(h.history["loss"]) == 1
    assert m.predict(autodiff.tensor(x)).shape == (64, 3)


def test_verbose_output(capsys):
    x, y = _blobs(64)
    m = _model()
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    m.fit(x, y, epochs=2, verbose=2)
    out = capsys.readouterr().out
    assert "Epoch 1/2" in out and "Epoch 2/2" in out and "accuracy:" in out
    m.fit(x, y, epochs=1, verbose=1)
    assert "Epoch 1/1" in capsys.readouterr().out
    m.fit(x, y, epochs=1, verbose=0)
    m.evaluate(x, y, verbose=0)
    assert capsys.readouterr().out == ""


def test_nan_loss_stops_fit():
    x, y = _blobs(64)
    x[40] = np.nan  # sample 40 sits in the third batch of 16 without shuffling
    m = _model()
    m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    with pytest.raises(NonFiniteLossError, match="epoch 1, step 3"):
        m.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    m = _model()  # the first model's weights are NaN now
    m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    with pytest.raises(NonFiniteLossError, match="epoch 1, step 3"):
        m.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0, sync_every=4)


# ----------------------------------------------------------------------------- callbacks
def test_early_stopping_and_restore_best_weights():
    x, y = _blobs(64)
    m = _model()
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    es = nn.callbacks.EarlyStopping(monitor="loss", min_delta=1e9, patience=1)
    h = m.fit(x, y, epochs=10, verbose=0, callbacks=[es])
    assert len(h.history["loss"]) == 2 and es.stopped_epoch == 1
    # restore_best_weights: a learning rate that diverges makes epoch 0 the best
    m = _model()
    m.compile(optimizer=optim.SGD(m.parameters(), lr=0.05), loss="sparse_categorical_crossentropy")
    seen = []

    class Snap(nn.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append({k: v.numpy().copy() for k, v in self.model.state_dict().items()})

    es = nn.EarlyStopping(monitor="loss", patience=1, min_delta=1e9, restore_best_weights=True)
    m.fit(x, y, epochs=5, verbose=0, callbacks=[Snap(), es])
    assert es.best_epoch == 0
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), seen[0][k])
    with pytest.raises(ValueError, match="mode"):
        nn.EarlyStopping(mode="up")


def test_early_stopping_mode_auto():
    assert nn.EarlyStopping(monitor="val_accuracy").mode == "max"
    assert nn.EarlyStopping(monitor="val_loss").mode == "min"
    es = nn.EarlyStopping(monitor="val_loss", min_delta=0.1)
    es.on_train_begin()
    assert es._better(1.0, 2.0) and not es._better(1.95, 2.0)


def test_model_checkpoint(tmp_path):
    x, y = _blobs(64)
    m = _model()
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    cb = nn.callbacks.ModelCheckpoint(str(tmp_path / "w-{epoch:02d}-{loss:.3f}.ckpt"), monitor="loss",
                                      save_weights_only=True)
    m.fit(x, y, epochs=2, verbose=0, callbacks=[cb])
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 2 and files[0].startswith("w-01-") and files[1].startswith("w-02-")
    sd = autodiff.load(str(tmp_path / files[1]))
    m2 = _model()
    m2.load_state_dict(sd)
    np.testing.assert_array_equal(m2.predict(x), m.predict(x))
    best = tmp_path / "best.ckpt"
    cb = nn.callbacks.ModelCheckpoint(str(best), monitor="val_loss", save_best_only=True)
    m.fit(x, y, epochs=2, verbose=0, validation_data=(x, y), callbacks=[cb])
    full = autodiff.load(str(best))
    assert set(full) == {"model", "optimizer", "epoch"}
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_csv_logger(tmp_path):
    x, y = _blobs(64)
    m = _model()
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    f = tmp_path / "log.csv"
    m.fit(x, y, epochs=3, verbose=0, callbacks=[nn.callbacks.CSVLogger(str(f))])
    rows = list(csv.reader(open(f)))
    assert rows[0] == ["epoch", "accuracy", "loss"] and len(rows) == 4 and rows[3][0] == "2"
    m.fit(x, y, epochs=1, verbose=0, callbacks=[nn.callbacks.CSVLogger(str(f), append=True)])
    rows = list(csv.reader(open(f)))
    assert len(rows) == 5 and rows[0] == ["epoch", "accuracy", "loss"]


def test_learning_rate_scheduler():
    x, y = _blobs(64)
    m = _model()
    m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    sched = nn.callbacks.LearningRateScheduler(lambda epoch, lr: 0.1 * 0.5 ** epoch)
    h = m.fit(x, y, epochs=3, verbose=0, callbacks=[sched])
    assert h.history["lr"] == pytest.approx([0.1, 0.05, 0.025])
    assert m.optimizer.param_groups[0]["lr"] == pytest.approx(0.025)
    sched = nn.callbacks.LearningRateScheduler(lambda epoch: 0.01)
    m.fit(x, y, epochs=1, verbose=0, callbacks=[sched])
    assert m.optimizer.param_groups[0]["lr"] == 0.01


def test_custom_callback_hooks_order():
    x, y = _blobs(32)
    m = _model()
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    calls = []

    class Rec(nn.callbacks.Callback):
        def on_train_begin(self, logs=None):
            calls.append("train_begin")

        def on_epoch_begin(self, epoch, logs=None):
            calls.append(f"epoch_begin{epoch}")

        def on_train_batch_end(self, batch, logs=None):
            calls.append(f"batch{batch}:{'loss' in logs}")

        def on_epoch_end(self, epoch, logs=None):
            calls.append(f"epoch_end{epoch}")

        def on_train_end(self, logs=None):
            calls.append("train_end")

    m.fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[Rec()])
    assert calls == ["train_begin", "epoch_begin0", "batch0:True", "batch1:True", "epoch_end0", "train_end"]


def test_submodule_named_like_a_keras_method_wins():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fit = nn.Linear(2, 2)
            self.predict = nn.Linear(2, 3)

        def forward(self, x):
            return self.predict(self.fit(x))
    net = Net()
    assert isinstance(net.fit, nn.Linear) and isinstance(net.predict, nn.Linear)
    assert net(autodiff.ones(1, 2)).shape == (1, 3)
    m = _model()
    assert callable(m.fit) and not isinstance(m.fit, nn.Module)
