# ruff: noqa: F401
"""nn: PyTorch-style neural-network modules, layers, losses, functional forms and initialisers.

`import nn`, `import nn.functional as F`: the names and signatures are PyTorch's.
"""
from . import functional, init, utils
from .loss import (BCELoss, BCEWithLogitsLoss, CosineEmbeddingLoss, CrossEntropyLoss, CTCLoss, GaussianNLLLoss, HuberLoss,
                   KLDivLoss, L1Loss, MarginRankingLoss, MSELoss, NLLLoss, PoissonNLLLoss, SmoothL1Loss,
                   SoftMarginLoss)
from .module import Module
from .keras import (Callback, CSVLogger, EarlyStopping, History, KerasMixin, LearningRateScheduler,  # noqa: F401
                    ModelCheckpoint, TerminateOnNaN, callbacks)
from .modules import *  # noqa: F401,F403
from .parameter import Parameter
from . import parallel  # nn.parallel.DistributedDataParallel (issue 8)
from . import distill, quantize  # knowledge distillation, int8 quantisation (issue 7)
