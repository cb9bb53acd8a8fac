"""MultiheadAttention, TransformerEncoderLayer and TransformerEncoder (PyTorch's parameter names)."""
from __future__ import annotations

import copy
import math

import numpy as np

import autodiff
from autodiff.autograd import _new_tensor

from .. import functional as F
from .. import init
from ..module import Module
from ..parameter import Parameter
from .container import ModuleList
from .dropout import Dropout
from .linear import Linear
from .normalization import LayerNorm


class NonDynamicallyQuantizableLinear(Linear):
    """The Linear PyTorch uses for MultiheadAttention.out_proj (same behaviour; the name keeps reprs equal)."""


class MultiheadAttention(Module):
    """Multi-head attention: in_proj_weight (3E, E) / in_proj_bias (3E) (or q/k/v_proj_weight when kdim or vdim
    differ from embed_dim), out_proj Linear(E, E). Returns (output, attention weights averaged over heads
    unless average_attn_weights=False; None when need_weights=False). Boolean masks use PyTorch's MHA
    convention: True marks a position that may NOT be attended."""

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False, add_zero_attn=False,
                 kdim=None, vdim=None, batch_first=False, device=None, dtype=None):
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"MultiheadAttention: embed_dim and num_heads must be > 0, got {embed_dim} and {num_heads}")
        if embed_dim % num_heads:
            raise AssertionError(f"embed_dim ({embed_dim}) must be divisible by num_heads ({num_heads})")
        self.embed_dim = embed_dim
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads, self.dropout, self.batch_first = num_heads, dropout, batch_first
        self.head_dim = embed_dim // num_heads
        fk = {"device": device, "dtype": dtype}
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(autodiff.empty(3 * embed_dim, embed_dim, **fk))
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        else:
            self.q_proj_weight = Parameter(autodiff.empty(embed_dim, embed_dim, **fk))
            self.k_proj_weight = Parameter(autodiff.empty(embed_dim, self.kdim, **fk))
            self.v_proj_weight = Parameter(autodiff.empty(embed_dim, self.vdim, **fk))
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = Parameter(autodiff.empty(3 * embed_dim, **fk))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = NonDynamicallyQuantizableLinear(embed_dim, embed_dim, bias=bias, **fk)
        if add_bias_kv:  # learned key / value appended to every sequence (after the projections), as PyTorch
            self.bias_k = Parameter(autodiff.empty(1, 1, embed_dim, **fk))
            self.bias_v = Parameter(autodiff.empty(1, 1, embed_dim, **fk))
        else:
            self.bias_k = self.bias_v = None
        self.add_zero_attn = add_zero_attn
        self._reset_parameters()

    def _reset_parameters(self):
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            init.xavier_uniform_(self.q_proj_weight)
            init.xavier_uniform_(self.k_proj_weight)
            init.xavier_uniform_(self.v_proj_weight)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)
        if self.bias_k is not None:
            init.xavier_normal_(self.bias_k)
        if self.bias_v is not None:
            init.xavier_normal_(self.bias_v)

    def _mask(self, m, n, L, S, dtype, xp, name):
        """A mask as an additive float array broadcastable to (N, heads, L, S)."""
        if m is None:
            return None
        md = m.data if isinstance(m, autodiff.Tensor) else xp.asarray(m)
        if md.dtype == np.bool_:
            add = xp.where(md, xp.asarray(-np.inf, dtype=dtype), xp.asarray(0, dtype=dtype))
        else:
            add = md.astype(dtype, copy=False)
        if name == "key_padding_mask":
            if add.shape != (n, S):
                raise RuntimeError(f"MultiheadAttention: key_padding_mask of shape {tuple(add.shape)}, expected {(n, S)}")
            return add.reshape(n, 1, 1, S)
        if add.ndim == 2:
            if add.shape != (L, S):
                raise RuntimeError(f"MultiheadAttention: 2-D attn_mask of shape {tuple(add.shape)}, expected {(L, S)}")
            return add
        if add.shape != (n * self.num_heads, L, S):
            raise RuntimeError(f"MultiheadAttention: 3-D attn_mask of shape {tuple(add.shape)}, expected "
                               f"{(n * self.num_heads, L, S)}")
        return add.reshape(n, self.num_heads, L, S)

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        batched = query.ndim == 3
        if query.ndim not in (2, 3):
            raise RuntimeError(f"MultiheadAttention: query must be 2-D or 3-D, got shape {tuple(query.shape)}")
        if query.shape[-1] != self.embed_dim:
            raise RuntimeError(f"MultiheadAttention(embed_dim={self.embed_dim}): query has {query.shape[-1]} features "
                               f"(shape {tuple(query.shape)})")
        if not batched:
            query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif self.batch_first:
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        L, n, E = query.shape
        S = key.shape[0]
        if key.shape[1] != n or value.shape[:2] != key.shape[:2]:
            raise RuntimeError(f"MultiheadAttention: query {tuple(query.shape)}, key {tuple(key.shape)} and value "
                               f"{tuple(value.shape)} do not match in batch / sequence sizes")
        b = self.in_proj_bias
        bq, bk, bv = (None, None, None) if b is None else (b[:E], b[E:2 * E], b[2 * E:])
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight
            wq, wk, wv = w[:E], w[E:2 * E], w[2 * E:]
        else:
            wq, wk, wv = self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
        h, hd = self.num_heads, self.head_dim
        # (L, N, E) -> (N, h, L, hd)
        q = F.linear(query, wq, bq).reshape(L, n, h, hd).permute(1, 2, 0, 3)
        k = F.linear(key, wk, bk).reshape(S, n, h, hd).permute(1, 2, 0, 3)
        v = F.linear(value, wv, bv).reshape(S, n, h, hd).permute(1, 2, 0, 3)
        xp = autodiff.backends.backend_of(q.data).xp
        extra = 0  # key slots appended after the masks' S (bias_k / bias_v, zero attention): never masked
        if self.bias_k is not None and self.bias_v is not None:
            k = autodiff.cat([k, self.bias_k.reshape(1, h, hd).expand(n, h, hd).unsqueeze(2).to(k.dtype)], 2)
            v = autodiff.cat([v, self.bias_v.reshape(1, h, hd).expand(n, h, hd).unsqueeze(2).to(v.dtype)], 2)
            extra += 1
        if self.add_zero_attn:
            z = _new_tensor(xp.zeros((n, h, 1, hd), dtype=k.data.dtype))
            k, v = autodiff.cat([k, z], 2), autodiff.cat([v, z], 2)
            extra += 1
        scores = q.matmul(k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
        if is_causal and attn_mask is None:
            attn_mask = _new_tensor(~xp.tril(xp.ones((L, S), dtype=bool)))
        for m, nm in ((attn_mask, "attn_mask"), (key_padding_mask, "key_padding_mask")):
            add = self._mask(m, n, L, S, scores.dtype, xp, nm)
            if add is not None:
                if extra:
                    add = xp.concatenate([add, xp.zeros(add.shape[:-1] + (extra,), dtype=add.dtype)], -1)
                scores = scores + _new_tensor(add)
        attn = F.softmax(scores, -1)
        if self.dropout > 0 and self.training:
            attn = F.dropout(attn, self.dropout, True)
        out = attn.matmul(v).permute(2, 0, 1, 3).reshape(L, n, E)
        out = self.out_proj(out)
        if not batched:
            out = out.squeeze(1)
        elif self.batch_first:
            out = out.transpose(0, 1)
        weights = None
        if need_weights:
            weights = attn.mean(1) if average_attn_weights else attn
            if not batched:
                weights = weights.squeeze(0)
        return out, weights


def _get_activation(activation):
    if callable(activation):
        return activation
    if activation == "relu":
        return F.relu
    if activation == "gelu":
        return F.gelu
    raise RuntimeError(f"activation should be relu/gelu, not {activation}")


class TransformerEncoderLayer(Module):
    """Self-attention + feed-forward block (post-norm by default, pre-norm with norm_first=True)."""

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu", layer_norm_eps=1e-5,
                 batch_first=False, norm_first=False, bias=True, device=None, dtype=None):
        super().__init__()
        fk = {"device": device, "dtype": dtype}
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first, **fk)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **fk)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **fk)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **fk)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **fk)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.activation = _get_activation(activation)

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal):
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask, need_weights=False,
                           is_causal=is_causal)[0]
        return self.dropout1(x)

    def _ff_block(self, x):
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal=False):
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            x = x + self._ff_block(self.norm2(x))
        else:
            x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
            x = self.norm2(x + self._ff_block(x))
        return x


class TransformerEncoder(Module):
    """A stack of num_layers deep copies of encoder_layer, with an optional final norm."""

    def __init__(self, encoder_layer, num_layers, norm=None, enable_nested_tensor=True, mask_check=True):
        super().__init__()
        self.layers = ModuleList([copy.deepcopy(encoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, src, mask=None, src_key_padding_mask=None, is_causal=None):
        out = src
        for mod in self.layers:
            out = mod(out, src_mask=mask, src_key_padding_mask=src_key_padding_mask, is_causal=bool(is_causal))
        if self.norm is not None:
            out = self.norm(out)
        return out


class TransformerDecoderLayer(Module):
    """Self-attention, cross-attention over `memory`, then feed-forward (post-norm by default, pre-norm with
    norm_first=True); PyTorch's submodule names (self_attn, multihead_attn, linear1/2, norm1..3)."""

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu", layer_norm_eps=1e-5,
                 batch_first=False, norm_first=False, bias=True, device=None, dtype=None):
        super().__init__()
        fk = {"device": device, "dtype": dtype}
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first, **fk)
        self.multihead_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first,
                                                 **fk)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **fk)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **fk)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **fk)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **fk)
        self.norm3 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **fk)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.dropout3 = Dropout(dropout)
        self.activation = _get_activation(activation)

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal):
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask, need_weights=False,
                           is_causal=is_causal)[0]
        return self.dropout1(x)

    def _mha_block(self, x, mem, attn_mask, key_padding_mask, is_causal):
        x = self.multihead_attn(x, mem, mem, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                                need_weights=False, is_causal=is_causal)[0]
        return self.dropout2(x)

    def _ff_block(self, x):
        return self.dropout3(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=False, memory_is_causal=False):
        x = tgt
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), tgt_mask, tgt_key_padding_mask, tgt_is_causal)
            x = x + self._mha_block(self.norm2(x), memory, memory_mask, memory_key_padding_mask, memory_is_causal)
            x = x + self._ff_block(self.norm3(x))
        else:
            x = self.norm1(x + self._sa_block(x, tgt_mask, tgt_key_padding_mask, tgt_is_causal))
            x = self.norm2(x + self._mha_block(x, memory, memory_mask, memory_key_padding_mask, memory_is_causal))
            x = self.norm3(x + self._ff_block(x))
        return x


class TransformerDecoder(Module):
    """A stack of num_layers deep copies of decoder_layer, with an optional final norm."""

    def __init__(self, decoder_layer, num_layers, norm=None):
        super().__init__()
        self.layers = ModuleList([copy.deepcopy(decoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=None, memory_is_causal=False):
        out = tgt
        for mod in self.layers:
            out = mod(out, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                      tgt_key_padding_mask=tgt_key_padding_mask, memory_key_padding_mask=memory_key_padding_mask,
                      tgt_is_causal=bool(tgt_is_causal), memory_is_causal=memory_is_causal)
        if self.norm is not None:
            out = self.norm(out)
        return out


def _generate_square_subsequent_mask(sz, device=None, dtype=None):
    """(sz, sz) float mask: -inf above the diagonal, 0 on and below it (PyTorch's causal mask)."""
    m = np.triu(np.full((sz, sz), -np.inf), 1)
    return autodiff.tensor(m, dtype=dtype if dtype is not None else autodiff.get_default_dtype(), device=device)


class Transformer(Module):
    """Encoder-decoder Transformer (PyTorch's nn.Transformer): encoder / decoder stacks with final LayerNorms;
    every parameter with more than one dimension is re-initialised xavier-uniform, as PyTorch."""

    def __init__(self, d_model=512, nhead=8, num_encoder_layers=6, num_decoder_layers=6, dim_feedforward=2048,
                 dropout=0.1, activation="relu", custom_encoder=None, custom_decoder=None, layer_norm_eps=1e-5,
                 batch_first=False, norm_first=False, bias=True, device=None, dtype=None):
        super().__init__()
        fk = {"device": device, "dtype": dtype}
        if custom_encoder is not None:
            self.encoder = custom_encoder
        else:
            layer = TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps,
                                            batch_first, norm_first, bias, **fk)
            self.encoder = TransformerEncoder(layer, num_encoder_layers,
                                              LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **fk))
        if custom_decoder is not None:
            self.decoder = custom_decoder
        else:
            layer = TransformerDecoderLayer(d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps,
                                            batch_first, norm_first, bias, **fk)
            self.decoder = TransformerDecoder(layer, num_decoder_layers,
                                              LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **fk))
        for p in self.parameters():
            if p.ndim > 1:
                init.xavier_uniform_(p)
        self.d_model, self.nhead, self.batch_first = d_model, nhead, batch_first

    def forward(self, src, tgt, src_mask=None, tgt_mask=None, memory_mask=None, src_key_padding_mask=None,
                tgt_key_padding_mask=None, memory_key_padding_mask=None, src_is_causal=None, tgt_is_causal=None,
                memory_is_causal=False):
        is_batched = src.ndim == 3
        if self.batch_first and is_batched and src.shape[0] != tgt.shape[0]:
            raise RuntimeError(f"Transformer: the batch number of src {tuple(src.shape)} and tgt {tuple(tgt.shape)} "
                               "must be equal")
        if not self.batch_first and is_batched and src.shape[1] != tgt.shape[1]:
            raise RuntimeError(f"Transformer: the batch number of src {tuple(src.shape)} and tgt {tuple(tgt.shape)} "
                               "must be equal")
        if src.shape[-1] != self.d_model or tgt.shape[-1] != self.d_model:
            raise RuntimeError(f"Transformer: the feature number of src {tuple(src.shape)} and tgt "
                               f"{tuple(tgt.shape)} must be equal to d_model ({self.d_model})")
        memory = self.encoder(src, mask=src_mask, src_key_padding_mask=src_key_padding_mask, is_causal=src_is_causal)
        return self.decoder(tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                            tgt_key_padding_mask=tgt_key_padding_mask,
                            memory_key_padding_mask=memory_key_padding_mask, tgt_is_causal=tgt_is_causal,
                            memory_is_causal=memory_is_causal)

    generate_square_subsequent_mask = staticmethod(_generate_square_subsequent_mask)
