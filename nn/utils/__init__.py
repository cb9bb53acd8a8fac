# ruff: noqa: F401
"""nn.utils: gradient clipping and parameter/vector conversion."""
from .clip_grad import clip_grad_norm, clip_grad_norm_, clip_grad_value_, clip_grads_with_norm_, get_total_norm
from .convert_parameters import parameters_to_vector, vector_to_parameters
from . import prune  # noqa: E402 - pruning (nn/utils/prune.py)
from . import rnn  # noqa: E402 - PackedSequence, pack/pad helpers (nn/utils/rnn.py)
from . import parametrize, parametrizations, stateless  # noqa: E402
from .init import skip_init  # noqa: E402
from .weight_norm import remove_weight_norm, weight_norm  # noqa: E402
from .fusion import fuse_conv_bn_eval, fuse_conv_bn_weights, fuse_linear_bn_eval, fuse_linear_bn_weights  # noqa: E402

__all__ = ["clip_grad_norm_", "clip_grads_with_norm_", "clip_grad_norm", "clip_grad_value_", "get_total_norm", "parameters_to_vector",
           "vector_to_parameters", "weight_norm", "remove_weight_norm", "parametrize", "parametrizations", "rnn"]
