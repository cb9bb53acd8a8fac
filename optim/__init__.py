"""Optimizers and learning-rate schedulers with PyTorch's API (`import optim` like `torch.optim`)."""
from .adam import Adam
from .adamw import AdamW
from .optimizer import Optimizer, required
from .sgd import SGD

__all__ = ["Optimizer", "required", "SGD", "Adam", "AdamW"]
