# ruff: noqa: F401
"""All layer classes (re-exported by `nn`)."""
from .adaptive import AdaptiveLogSoftmaxWithLoss
from .activation import (CELU, ELU, GELU, GLU, SELU, Hardsigmoid, Hardswish, Hardtanh, LeakyReLU, LogSigmoid,
                         LogSoftmax, Mish, PReLU, ReLU, ReLU6, Sigmoid, SiLU, Softmax, Softmin, Softplus, Softsign,
                         Tanh)
from .container import ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential
from .dropout import AlphaDropout, Dropout, Dropout1d, Dropout2d
from .flatten import Flatten, Unflatten
from .linear import Bilinear, Identity, LazyLinear, Linear

from .conv import Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from .embedding import Embedding, EmbeddingBag
from .normalization import (BatchNorm1d, BatchNorm2d, BatchNorm3d, GroupNorm, InstanceNorm2d, LayerNorm, RMSNorm)
from .pooling import (AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveAvgPool3d, AdaptiveMaxPool2d, AdaptiveMaxPool3d,
                      AvgPool1d, AvgPool2d, AvgPool3d, MaxPool1d, MaxPool2d, MaxPool3d, MaxUnpool2d)

__all__ = [n for n in dir() if not n.startswith("_")]
from .rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNBase, RNNCell, RNNCellBase
from .upsampling import (ConstantPad1d, ConstantPad2d, PixelShuffle, ReflectionPad2d, ReplicationPad2d, Upsample,
                         ZeroPad2d)
from .extra import (AdaptiveMaxPool1d, ChannelShuffle, CircularPad1d, CircularPad2d, ConstantPad3d, CosineSimilarity,
                    Dropout3d, FeatureAlphaDropout, Fold, Hardshrink, HingeEmbeddingLoss, InstanceNorm1d,
                    InstanceNorm3d, LocalResponseNorm, MultiLabelMarginLoss, MultiLabelSoftMarginLoss, MultiMarginLoss, PairwiseDistance,
                    PixelUnshuffle, ReflectionPad1d, ReplicationPad1d, RReLU, Softmax2d, Softshrink, Tanhshrink,
                    Threshold, TripletMarginLoss, TripletMarginWithDistanceLoss, Unfold, UpsamplingBilinear2d, UpsamplingNearest2d, ZeroPad1d,
                    ZeroPad3d, ReflectionPad3d, ReplicationPad3d, CircularPad3d, MaxUnpool1d)
from .lazy import (LazyBatchNorm1d, LazyBatchNorm2d, LazyBatchNorm3d, LazyConv1d, LazyConv2d, LazyConv3d,
                   LazyConvTranspose1d, LazyConvTranspose2d, LazyConvTranspose3d, LazyInstanceNorm1d, LazyInstanceNorm2d,
                   LazyInstanceNorm3d)
from .transformer import (MultiheadAttention, NonDynamicallyQuantizableLinear, Transformer, TransformerDecoder,
                          TransformerDecoderLayer, TransformerEncoder,
                          TransformerEncoderLayer)

__all__ = [n for n in dir() if not n.startswith("_")]
