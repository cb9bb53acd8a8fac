"""A small CNN trained with a PyTorch-style loop (Conv2d, MaxPool2d, functional ReLU, Adam).

    python examples/mnist_cnn.py --epochs 3
    python examples/mnist_cnn.py --epochs 1 --limit 2000               # a quick check

conv 5x5 1->16, ReLU, maxpool 2, conv 5x5 16->32, ReLU, maxpool 2, linear 1568->10 (the model of
`python -m autodiff.train --model cnn`).
"""
import time

from _common import accuracy, device, mnist_arrays, parser

import autodiff
import nn
import nn.functional as F
import optim
from autodiff.data import DataLoader, TensorDataset


class ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, kernel_size=5, padding=2)
        self.conv2 = nn.Conv2d(16, 32, kernel_size=5, padding=2)
        self.fc = nn.Linear(32 * 7 * 7, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc(autodiff.flatten(x, 1))


def main(argv=None):
    args = parser(__doc__.splitlines()[0], epochs=3, lr=1e-3).parse_args(argv)
    autodiff.manual_seed(args.seed)
    dev = device(args.device)
    x_train, y_train, x_test, y_test = mnist_arrays(args.data_root, args.limit)
    x_train, x_test = (x_train - 0.1307) / 0.3081, (x_test - 0.1307) / 0.3081
    loader = DataLoader(TensorDataset(x_train, y_train), batch_size=args.batch_size, shuffle=True,
                        seed=args.seed, device=dev)
    model = ConvNet().to(dev)
    optimizer = optim.Adam(model.parameters(), lr=args.lr)
    for epoch in range(args.epochs):
        t0 = time.perf_counter()
        model.train()
        total, n = 0.0, 0
        for data, target in loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(data), target)
            loss.backward()
            optimizer.step()
            total += loss.item() * data.shape[0]
            n += data.shape[0]
        model.eval()
        with autodiff.no_grad():
            logits = autodiff.cat([model(autodiff.tensor(x_test[i:i + 1000], device=dev))
                                   for i in range(0, len(x_test), 1000)])
        acc = accuracy(logits.numpy(), y_test)
        print(f"epoch {epoch + 1}/{args.epochs}: train loss {total / n:.4f}, test accuracy {acc:.4f} "
              f"({time.perf_counter() - t0:.1f} s)")
    return {"test_accuracy": acc}


if __name__ == "__main__":
    main()
