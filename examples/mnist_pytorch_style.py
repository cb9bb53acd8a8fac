"""The seed's PyTorch-style training loop, with `import autodiff, nn, optim` instead of torch.

    python examples/mnist_pytorch_style.py --epochs 5
    python examples/mnist_pytorch_style.py --epochs 1 --limit 2000     # a quick check

The model and the loop are the seed's code unchanged apart from the imports and
`torch.relu` -> `autodiff.relu`. Data: `make data` (data/mnist.npz) or the MNIST IDX files.
"""
import time

from _common import accuracy, device, mnist_arrays, parser

import autodiff
import nn
import optim
from autodiff.data import DataLoader, TensorDataset


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


def main(argv=None):
    args = parser(__doc__.splitlines()[0], epochs=5, lr=0.1).parse_args(argv)
    autodiff.manual_seed(args.seed)
    dev = device(args.device)
    x_train, y_train, x_test, y_test = mnist_arrays(args.data_root, args.limit)
    train_loader = DataLoader(TensorDataset(x_train, y_train), batch_size=args.batch_size, shuffle=True,
                              seed=args.seed, device=dev)
    test_loader = DataLoader(TensorDataset(x_test, y_test), batch_size=1000, device=dev)

    net = Net().to(dev)
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.SGD(net.parameters(), lr=args.lr, momentum=0.9)
    for epoch in range(args.epochs):
        t0 = time.perf_counter()
        net.train()
        for data, target in train_loader:
            optimizer.zero_grad()
            loss = criterion(net(data), target)
            loss.backward()
            optimizer.step()
        net.eval()
        correct = 0
        with autodiff.no_grad():
            for data, target in test_loader:
                correct += int((net(data).argmax(1) == target).sum().item())
        acc = correct / len(y_test)
        print(f"epoch {epoch + 1}/{args.epochs}: last batch loss {loss.item():.4f}, test accuracy {acc:.4f} "
              f"({time.perf_counter() - t0:.1f} s)")
    with autodiff.no_grad():
        final = accuracy(net(autodiff.tensor(x_test, device=dev)).numpy(), y_test)
    return {"test_accuracy": final}


if __name__ == "__main__":
    main()
