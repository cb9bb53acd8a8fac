"""The seed's TensorFlow/Keras program: `Sequential` + `compile` + `fit` + `evaluate` + `predict`.

    python examples/mnist_keras_style.py --epochs 5
    python examples/mnist_keras_style.py --epochs 1 --limit 2000       # a quick check

Keras's beginner MNIST model (Flatten, Dense 128 relu, Dropout 0.2, Dense 10), written with `nn`
layers; `compile`/`fit`/`evaluate`/`predict` take and return NumPy arrays as in Keras.
"""
import numpy as np
from _common import device, mnist_arrays, parser

import autodiff
import nn


def main(argv=None):
    args = parser(__doc__.splitlines()[0], epochs=5, batch_size=32).parse_args(argv)
    autodiff.manual_seed(args.seed)
    x_train, y_train, x_test, y_test = mnist_arrays(args.data_root, args.limit)  # pixels already in [0, 1]

    model = nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 128),
        nn.ReLU(),
        nn.Dropout(0.2),
        nn.Linear(128, 10),
    ).to(device(args.device))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size,
                        validation_data=(x_test, y_test), seed=args.seed,
                        callbacks=[nn.callbacks.EarlyStopping(monitor="val_loss", patience=2)])
    loss, acc = model.evaluate(x_test, y_test, verbose=2)
    probs = model.predict(x_test[:5])  # logits as a NumPy array
    print("first test predictions:", np.argmax(probs, axis=1), "labels:", y_test[:5])
    return {"test_accuracy": acc, "history": history.history}


if __name__ == "__main__":
    main()
