"""A small pre-norm Transformer (extension: ``encoder_type=decoder_type=transformer``).

Vaswani et al.'s encoder-decoder with the layer norm before each sub-layer, sinusoidal
positions, ``transformer_model_size`` / ``_attention_heads`` / ``_feed_forward_num_hidden`` /
``_dropout``, and ``num_layers_encoder`` / ``num_layers_decoder`` layers. It offers the same
``forward`` / ``encode`` / ``init_state`` / ``step`` interface as the RNN model (see
``model.py``). Decoding reuses what earlier work computed, as Sockeye does: ``encode`` projects
the encoder states to every decoder layer's cross-attention keys and values once, and a step
computes only the new position, each decoder layer keeping the self-attention keys and values of
the earlier positions (exact, since attention is causal). Attention runs in torch's fused
``scaled_dot_product_attention``, except for the one matrix a step returns (the last decoder
layer's cross-attention, averaged over heads) and in training on CPU, where ``attend`` computes
it to draw its dropout mask with ``dropout.py``'s cheaper generator, as every dropout here does.
The layers keep the parameter names of torch's ``nn.MultiheadAttention`` and
``nn.TransformerEncoderLayer``, which earlier versions used, so model files are unchanged.
"""

from __future__ import annotations

import copy
import math
from typing import cast

import torch
from torch import nn
from torch.nn import functional as F

from sagetext.algorithms.seq2seq.config import ModelConfig
from sagetext.algorithms.seq2seq.dropout import Dropout, dropout
from sagetext.algorithms.seq2seq.model import source_as_read
from sagetext.algorithms.seq2seq.vocab import PAD_ID

State = dict[str, torch.Tensor]


def positions(length: int, size: int, device: torch.device) -> torch.Tensor:
    """(length, size) sinusoidal position encodings."""
    position = torch.arange(length, device=device, dtype=torch.float32).unsqueeze(1)
    rate = torch.exp(torch.arange(0, size, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / size))
    table = torch.zeros(length, size, device=device)
    table[:, 0::2] = torch.sin(position * rate)
    table[:, 1::2] = torch.cos(position * rate[: size // 2])
    return table


def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(B, T, D) → (B, heads, T, D / heads)."""
    return x.view(x.size(0), x.size(1), heads, -1).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, heads, T, D / heads) → (B, T, D)."""
    return x.transpose(1, 2).reshape(x.size(0), x.size(2), -1)


def project(attention: nn.MultiheadAttention, x: torch.Tensor, first: int, count: int = 1) -> list[torch.Tensor]:
    """``count`` consecutive projections of ``x`` by ``attention``'s weights, from the query (0),
    key (1) or value (2) one, each split into heads: one matmul for all of them. The layers keep
    ``nn.MultiheadAttention``'s parameters (so model files stay the same) but attend here, so
    that keys and values can be computed once and cached."""
    size = attention.embed_dim
    rows = slice(first * size, (first + count) * size)
    bias = attention.in_proj_bias[rows] if attention.in_proj_bias is not None else None
    projected = F.linear(x, attention.in_proj_weight[rows], bias)
    return [split_heads(part, attention.num_heads) for part in projected.split(size, dim=-1)]


def attend(query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, dropout_p: float,
           mask: torch.Tensor | None = None, causal: bool = False) -> torch.Tensor:
    """softmax(q·kᵀ / √d) v over heads (B, heads, T, D / heads), where ``mask`` (broadcast to
    (B, heads, T, S)) is True, or causally; ``dropout_p`` > 0 only in training. torch's fused
    attention runs it, except when training on CPU with dropout, where torch would compute the
    same products and softmax and draw the dropout mask the slow way: this draws it with
    ``dropout.dropout``."""
    if dropout_p == 0.0 or query.device.type != "cpu":
        return F.scaled_dot_product_attention(query, keys, values, attn_mask=mask, dropout_p=dropout_p,
                                              is_causal=causal)
    return dropout(attention_weights(query, keys, mask, causal), dropout_p, True) @ values


def attention_weights(query: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor | None = None,
                      causal: bool = False) -> torch.Tensor:
    """softmax(q·kᵀ / √d) (B, heads, T, S), zero where ``mask`` is False or, if ``causal``, at
    later positions."""
    scores = (query @ keys.transpose(-2, -1)) / math.sqrt(query.size(-1))
    if causal:
        later = torch.ones(scores.shape[-2:], dtype=torch.bool, device=scores.device).triu(1)
        scores = scores.masked_fill(later, float("-inf"))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1)


class EncoderLayer(nn.Module):
    """A pre-norm encoder layer, named and initialised as torch's
    ``nn.TransformerEncoderLayer(norm_first=True)`` (so model files are unchanged), attending
    through ``attend``: x + self-attention(norm1(x)), then + feed-forward(norm2(x))."""

    def __init__(self, size: int, heads: int, feed_forward: int, dropout_p: float) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(size, heads, dropout=dropout_p, batch_first=True)
        self.linear1 = nn.Linear(size, feed_forward)
        self.dropout = Dropout(dropout_p)
        self.linear2 = nn.Linear(feed_forward, size)
        self.norm1, self.norm2 = nn.LayerNorm(size), nn.LayerNorm(size)
        self.dropout1, self.dropout2 = Dropout(dropout_p), Dropout(dropout_p)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (B, S, D); ``mask`` (B, 1, 1, S) True at real source positions."""
        query, keys, values = project(self.self_attn, self.norm1(x), 0, count=3)
        attended = attend(query, keys, values, self.self_attn.dropout if self.training else 0.0, mask=mask)
        x = x + self.dropout1(self.self_attn.out_proj(merge_heads(attended)))
        hidden = self.dropout(F.relu(self.linear1(self.norm2(x))))
        return x + self.dropout2(self.linear2(hidden))


class Encoder(nn.Module):
    """``num_layers_encoder`` copies of one ``EncoderLayer`` (copies of the same initial weights,
    as ``nn.TransformerEncoder`` makes them, before the model's own initialisation)."""

    def __init__(self, layer: EncoderLayer, count: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList([copy.deepcopy(layer) for _ in range(count)])

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, mask)
        return x


class DecoderLayer(nn.Module):
    def __init__(self, size: int, heads: int, feed_forward: int, dropout_p: float) -> None:
        super().__init__()
        self.norm_self, self.norm_cross, self.norm_ff = nn.LayerNorm(size), nn.LayerNorm(size), nn.LayerNorm(size)
        self.self_attention = nn.MultiheadAttention(size, heads, dropout=dropout_p, batch_first=True)
        self.cross_attention = nn.MultiheadAttention(size, heads, dropout=dropout_p, batch_first=True)
        self.feed_forward = nn.Sequential(nn.Linear(size, feed_forward), nn.ReLU(), Dropout(dropout_p),
                                          nn.Linear(feed_forward, size))
        self.dropout = Dropout(dropout_p)

    def memory_keys(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The cross-attention keys and values (B, heads, S, D / heads) of the encoder states."""
        keys, values = project(self.cross_attention, memory, 1, count=2)
        return keys, values

    def forward(self, x: torch.Tensor, memory_keys: tuple[torch.Tensor, torch.Tensor], memory_mask: torch.Tensor,
                cache: tuple[torch.Tensor, torch.Tensor] | None = None, weights: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor | None, tuple[torch.Tensor, torch.Tensor]]:
        """x (B, T, D) → (output, cross-attention weights (B, T, S) averaged over heads if
        ``weights`` else None, this layer's self-attention keys and values so far).
        ``memory_mask`` (B, 1, 1, S) is True at real source positions. Without ``cache`` the T
        positions attend causally among themselves (teacher forcing); with the keys and values of
        the t earlier positions, x holds only new position(s), which see all of them."""
        dropout_p = self.self_attention.dropout if self.training else 0.0
        h = self.norm_self(x)
        query, keys, values = project(self.self_attention, h, 0, count=3)
        if cache is not None:
            keys, values = torch.cat([cache[0], keys], dim=2), torch.cat([cache[1], values], dim=2)
        attended = attend(query, keys, values, dropout_p, causal=cache is None and x.size(1) > 1)
        x = x + self.dropout(self.self_attention.out_proj(merge_heads(attended)))
        (query,) = project(self.cross_attention, self.norm_cross(x), 0)
        attention = None
        if weights:
            probs = attention_weights(query, memory_keys[0], memory_mask)
            attention = probs.mean(dim=1)
            attended = dropout(probs, dropout_p, self.training) @ memory_keys[1]
        else:
            attended = attend(query, *memory_keys, dropout_p, mask=memory_mask)
        x = x + self.dropout(self.cross_attention.out_proj(merge_heads(attended)))
        return x + self.dropout(self.feed_forward(self.norm_ff(x))), attention, (keys, values)


class TransformerModel(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        size = config.transformer_model_size
        self.scale = math.sqrt(size)
        self.source_embed = nn.Embedding(config.source_vocab_size, size, padding_idx=PAD_ID)
        self.target_embed = nn.Embedding(config.target_vocab_size, size, padding_idx=PAD_ID)
        self.dropout = Dropout(config.transformer_dropout)
        layer = EncoderLayer(size, config.transformer_attention_heads, config.transformer_feed_forward_num_hidden,
                             config.transformer_dropout)
        self.encoder = Encoder(layer, config.num_layers_encoder)
        self.encoder_norm = nn.LayerNorm(size)
        self.decoder = nn.ModuleList([
            DecoderLayer(size, config.transformer_attention_heads, config.transformer_feed_forward_num_hidden,
                         config.transformer_dropout) for _ in range(config.num_layers_decoder)])
        self.decoder_norm = nn.LayerNorm(size)
        self.output = nn.Linear(size, config.target_vocab_size)
        self._initialise()

    def _initialise(self) -> None:
        """Sockeye 3's initialisation: every weight matrix Glorot-uniform, every bias zero (layer
        norms at one and zero), embeddings uniform in ±0.07 (the padding row zero). The
        cross-attention's query projection and its key-value projection are two matrices there
        (the query reads the decoder, keys and values the encoder), each with its own fan."""
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, nn.Embedding):
                    module.weight.uniform_(-0.07, 0.07)
                    module.weight[PAD_ID].zero_()
                    continue
                for name, param in module.named_parameters(recurse=False):
                    if name.endswith("bias"):
                        param.zero_()
                    elif param.dim() >= 2:
                        nn.init.xavier_uniform_(param)
            for layer in self.decoder:
                query, keys_values = cast(DecoderLayer, layer).cross_attention.in_proj_weight.split(
                    [self.config.transformer_model_size, 2 * self.config.transformer_model_size])
                nn.init.xavier_uniform_(query)
                nn.init.xavier_uniform_(keys_values)

    def _embed(self, table: nn.Embedding, ids: torch.Tensor, start: int = 0) -> torch.Tensor:
        table_positions = positions(start + ids.size(1), table.embedding_dim, ids.device)[start:]
        return self.dropout(table(ids) * self.scale + table_positions.to(table.weight.dtype))

    def encode(self, source: torch.Tensor, length: torch.Tensor) -> State:
        """The source mask and, per decoder layer, its cross-attention keys and values of the
        encoder states (computed once: every decoding step reuses them; beam search repeats only
        these per hypothesis, not the encoder states themselves)."""
        source, length = source_as_read(self.config, source, length)
        mask = torch.arange(source.size(1), device=source.device).unsqueeze(0) < length.unsqueeze(1)
        memory = self.encoder_norm(self.encoder(self._embed(self.source_embed, source), mask[:, None, None, :]))
        encoded = {"mask": mask}
        for i, layer in enumerate(self.decoder):
            encoded[f"cross_keys{i}"], encoded[f"cross_values{i}"] = cast(DecoderLayer, layer).memory_keys(memory)
        return encoded

    def _memory(self, encoded: State, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return encoded[f"cross_keys{i}"], encoded[f"cross_values{i}"]

    def forward(self, source: torch.Tensor, length: torch.Tensor, target_input: torch.Tensor,
                scored: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher-forced logits (B, T, target vocabulary), or only those (N, V) of the positions
        ``scored`` (B, T) marks."""
        encoded = self.encode(source, length)
        memory_mask = encoded["mask"][:, None, None, :]
        x = self._embed(self.target_embed, target_input)
        for i, layer in enumerate(self.decoder):
            x, _, _ = layer(x, self._memory(encoded, i), memory_mask)
        return self.output(self.decoder_norm(x if scored is None else x[scored]))

    def init_state(self, encoded: State) -> State:
        """Per decoder layer, the self-attention keys and values of the positions decoded so far
        (none yet)."""
        memory = encoded["cross_keys0"]
        empty = memory.new_zeros(memory.size(0), memory.size(1), 0, memory.size(3))
        state: State = {}
        for i in range(len(self.decoder)):
            state[f"self_keys{i}"], state[f"self_values{i}"] = empty, empty
        return state

    def step(self, previous: torch.Tensor, state: State,
             encoded: State) -> tuple[torch.Tensor, torch.Tensor, State]:
        position = state["self_keys0"].size(2)
        x = self._embed(self.target_embed, previous.unsqueeze(1), start=position)
        memory_mask = encoded["mask"][:, None, None, :]
        last = len(self.decoder) - 1
        weights: torch.Tensor | None = None
        new_state: State = {}
        for i, layer in enumerate(self.decoder):  # the attention matrix is the last layer's
            cache = (state[f"self_keys{i}"], state[f"self_values{i}"])
            x, weights, (new_state[f"self_keys{i}"], new_state[f"self_values{i}"]) = layer(
                x, self._memory(encoded, i), memory_mask, cache=cache, weights=i == last)
        assert weights is not None
        return self.output(self.decoder_norm(x)[:, 0]), weights[:, 0], new_state
