"""A small pre-norm Transformer (extension: ``encoder_type=decoder_type=transformer``).

Vaswani et al.'s encoder-decoder with the layer norm before each sub-layer, sinusoidal
positions, ``transformer_model_size`` / ``_attention_heads`` / ``_feed_forward_num_hidden`` /
``_dropout``, and ``num_layers_encoder`` / ``num_layers_decoder`` layers. It offers the same
``forward`` / ``encode`` / ``init_state`` / ``step`` interface as the RNN model (see
``model.py``). A decoding step computes only the new position: each decoder layer keeps the
normalised inputs of the earlier positions as its self-attention keys and values (exact, since
the layer norm comes first and attention is causal). The attention matrix of a step is the last
decoder layer's cross-attention, averaged over heads.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from sagetext.algorithms.seq2seq.config import ModelConfig
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


class DecoderLayer(nn.Module):
    def __init__(self, size: int, heads: int, feed_forward: int, dropout: float) -> None:
        super().__init__()
        self.norm_self, self.norm_cross, self.norm_ff = nn.LayerNorm(size), nn.LayerNorm(size), nn.LayerNorm(size)
        self.self_attention = nn.MultiheadAttention(size, heads, dropout=dropout, batch_first=True)
        self.cross_attention = nn.MultiheadAttention(size, heads, dropout=dropout, batch_first=True)
        self.feed_forward = nn.Sequential(nn.Linear(size, feed_forward), nn.ReLU(), nn.Dropout(dropout),
                                          nn.Linear(feed_forward, size))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, memory: torch.Tensor, memory_padding: torch.Tensor,
                causal: torch.Tensor | None, cache: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (B, T, D) → (output, cross-attention weights (B, T, S), normalised inputs for the cache).
        With ``cache`` (B, t, D) of earlier positions, x holds only the new position(s)."""
        h = self.norm_self(x)
        keys = h if cache is None else torch.cat([cache, h], dim=1)
        x = x + self.dropout(self.self_attention(h, keys, keys, attn_mask=causal, need_weights=False)[0])
        normalised = keys
        h = self.norm_cross(x)
        attended, weights = self.cross_attention(h, memory, memory, key_padding_mask=memory_padding,
                                                 need_weights=True, average_attn_weights=True)
        x = x + self.dropout(attended)
        return x + self.dropout(self.feed_forward(self.norm_ff(x))), weights, normalised


class TransformerModel(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        size = config.transformer_model_size
        self.scale = math.sqrt(size)
        self.source_embed = nn.Embedding(config.source_vocab_size, size, padding_idx=PAD_ID)
        self.target_embed = nn.Embedding(config.target_vocab_size, size, padding_idx=PAD_ID)
        self.dropout = nn.Dropout(config.transformer_dropout)
        layer = nn.TransformerEncoderLayer(size, config.transformer_attention_heads,
                                           config.transformer_feed_forward_num_hidden,
                                           config.transformer_dropout, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, config.num_layers_encoder, enable_nested_tensor=False)
        self.encoder_norm = nn.LayerNorm(size)
        self.decoder = nn.ModuleList([
            DecoderLayer(size, config.transformer_attention_heads, config.transformer_feed_forward_num_hidden,
                         config.transformer_dropout) for _ in range(config.num_layers_decoder)])
        self.decoder_norm = nn.LayerNorm(size)
        self.output = nn.Linear(size, config.target_vocab_size)
        for param in self.parameters():
            if param.dim() >= 2:
                nn.init.xavier_uniform_(param)
        with torch.no_grad():
            self.source_embed.weight.normal_(0, size ** -0.5)
            self.target_embed.weight.normal_(0, size ** -0.5)
            self.source_embed.weight[PAD_ID].zero_()
            self.target_embed.weight[PAD_ID].zero_()

    def _embed(self, table: nn.Embedding, ids: torch.Tensor, start: int = 0) -> torch.Tensor:
        table_positions = positions(start + ids.size(1), table.embedding_dim, ids.device)[start:]
        return self.dropout(table(ids) * self.scale + table_positions.to(table.weight.dtype))

    def encode(self, source: torch.Tensor, length: torch.Tensor) -> State:
        mask = torch.arange(source.size(1), device=source.device).unsqueeze(0) < length.unsqueeze(1)
        memory = self.encoder_norm(self.encoder(self._embed(self.source_embed, source),
                                                src_key_padding_mask=~mask))
        return {"memory": memory, "mask": mask, "length": length}

    def _decode(self, target_input: torch.Tensor, encoded: State) -> tuple[torch.Tensor, torch.Tensor]:
        steps = target_input.size(1)
        causal = torch.triu(torch.ones(steps, steps, dtype=torch.bool, device=target_input.device), diagonal=1)
        x = self._embed(self.target_embed, target_input)
        weights = x.new_zeros(0)
        for layer in self.decoder:
            x, weights, _ = layer(x, encoded["memory"], ~encoded["mask"], causal)
        return self.decoder_norm(x), weights

    def forward(self, source: torch.Tensor, length: torch.Tensor, target_input: torch.Tensor) -> torch.Tensor:
        hidden, _ = self._decode(target_input, self.encode(source, length))
        return self.output(hidden)

    def init_state(self, encoded: State) -> State:
        """Per decoder layer, the normalised inputs of the positions decoded so far (none yet)."""
        memory = encoded["memory"]
        empty = memory.new_zeros(memory.size(0), 0, memory.size(2))
        return {f"layer{i}": empty for i in range(len(self.decoder))}

    def step(self, previous: torch.Tensor, state: State,
             encoded: State) -> tuple[torch.Tensor, torch.Tensor, State]:
        position = state["layer0"].size(1)
        x = self._embed(self.target_embed, previous.unsqueeze(1), start=position)
        weights = x.new_zeros(0)
        new_state: State = {}
        for i, layer in enumerate(self.decoder):
            x, weights, new_state[f"layer{i}"] = layer(x, encoded["memory"], ~encoded["mask"], None,
                                                       cache=state[f"layer{i}"])
        return self.output(self.decoder_norm(x)[:, 0]), weights[:, 0], new_state
