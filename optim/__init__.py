"""Optimizers and learning-rate schedulers with PyTorch's API (`import optim` like `torch.optim`)."""
from . import lr_scheduler
from .adadelta import Adadelta
from .adafactor import Adafactor
from .adagrad import Adagrad
from .adam import Adam
from .adamax import Adamax
from .adamw import AdamW
from .asgd import ASGD
from .lbfgs import LBFGS
from .lion import Lion
from .nadam import NAdam
from .optimizer import Optimizer, required
from .radam import RAdam
from .rmsprop import RMSprop
from .rprop import Rprop
from .sgd import SGD

__all__ = ["Optimizer", "required", "SGD", "Adam", "AdamW", "Adagrad", "RMSprop", "Adadelta", "Adamax", "NAdam",
           "RAdam", "Lion", "Rprop", "ASGD", "LBFGS", "Adafactor", "lr_scheduler"]


def __getattr__(name):
    """`optim.swa_utils` is imported on first use (it builds on nn, which may import optim)."""
    if name == "swa_utils":
        import importlib
        return importlib.import_module(".swa_utils", __name__)
    raise AttributeError(f"module 'optim' has no attribute {name!r}")
