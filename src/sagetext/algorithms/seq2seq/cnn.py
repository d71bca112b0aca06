"""The convolutional encoder and decoder (``encoder_type`` / ``decoder_type`` = cnn), after
Gehring et al. 2017, "Convolutional Sequence to Sequence Learning" (ConvS2S).

Encoder: token embeddings plus learned position embeddings (``num_embed_source`` wide, up to
``max_seq_len_source`` positions), a linear map to ``cnn_num_hidden``, then
``num_layers_encoder`` blocks, each: dropout (``cnn_hidden_dropout``), a convolution over time
of width ``cnn_kernel_width_encoder`` centred on each position (an even width looks one more
position ahead than back), the activation ``cnn_activation_type`` (``glu``: the convolution
gives twice the channels and one half gates the other; else relu, softrelu = softplus,
sigmoid or tanh), and a residual connection scaled by sqrt(0.5). Padding is zeroed before every
convolution, so a sentence encodes the same alone or in a padded batch.

Decoder: the same embeddings on the target side and ``num_layers_decoder`` blocks whose
convolutions (width ``cnn_kernel_width_decoder``) see only the current and earlier positions.
Multi-step attention: after each block's convolution, its states plus the embedded target
input query the encoder states (dot products, in the ``cnn_num_hidden`` space); the context
(a weighted sum of the encoder states plus the encoder's embedded input, scaled by the square
root of the source length) is mapped back and added, then the block's residual. The last
states go through a linear map to ``num_embed_target``, dropout and the output layer. A decoding
step keeps, per block, the last ``width - 1`` inputs, so it computes only the new position.

Either decoder takes either encoder: the rnn decoder attends to the cnn encoder's states, and
the cnn decoder reads an rnn encoder's states through a linear map to ``cnn_num_hidden`` when
the widths differ (Sockeye 1.x requires them equal) and attends to them alone, as an rnn
encoder has no embedded input beside its states.

Attention matrix: the cnn decoder attends once per block; ``step`` returns the average of the
blocks' attention weights (each row still sums to 1), which is what serving returns as
``"matrix"``.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional

from sagetext.algorithms.seq2seq.config import ModelConfig
from sagetext.algorithms.seq2seq.model import build_encoder, encoder_width, initialise, source_as_read
from sagetext.algorithms.seq2seq.vocab import PAD_ID

State = dict[str, torch.Tensor]
SQRT_HALF = math.sqrt(0.5)
ACTIVATIONS = {"relu": torch.relu, "softrelu": functional.softplus, "sigmoid": torch.sigmoid, "tanh": torch.tanh}


class ConvolutionBlock(nn.Module):
    """Dropout, a convolution over time and the activation: (B, T, H) → (B, T, H)."""

    def __init__(self, hidden: int, width: int, activation: str, dropout: float, causal: bool) -> None:
        super().__init__()
        self.activation = activation
        self.conv = nn.Conv1d(hidden, 2 * hidden if activation == "glu" else hidden, width)
        self.dropout = nn.Dropout(dropout)
        self.pad_before = width - 1 if causal else (width - 1) // 2
        self.pad_after = width - 1 - self.pad_before

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Every position at once, as one matrix product over the windows (the convolution's
        weights, read as ``step`` reads them)."""
        padded = functional.pad(self.dropout(x), (0, 0, self.pad_before, self.pad_after))
        return self._convolve(padded.unfold(1, self.conv.kernel_size[0], 1))  # windows (B, T, H, width)

    def step(self, window: torch.Tensor) -> torch.Tensor:
        """The output at the last position of a causal window (B, width, H) → (B, H)."""
        return self._convolve(self.dropout(window).transpose(1, 2))

    def _convolve(self, windows: torch.Tensor) -> torch.Tensor:
        """Windows (..., H, width) → the activated convolution output (..., H) at each."""
        return self._activate(functional.linear(windows.flatten(-2), self.conv.weight.flatten(1), self.conv.bias))

    def _activate(self, x: torch.Tensor) -> torch.Tensor:
        return functional.glu(x, dim=-1) if self.activation == "glu" else ACTIVATIONS[self.activation](x)


class Embedding(nn.Module):
    """Token plus learned position embeddings, dropout, then a linear map to the hidden width."""

    def __init__(self, vocab_size: int, size: int, positions: int, dropout: float, hidden: int) -> None:
        super().__init__()
        self.tokens = nn.Embedding(vocab_size, size, padding_idx=PAD_ID)
        self.positions = nn.Embedding(positions, size)
        self.dropout = nn.Dropout(dropout)
        self.to_hidden = nn.Linear(size, hidden)

    def forward(self, ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """ids and positions of the same shape → (..., hidden)."""
        positions = positions.clamp(max=self.positions.num_embeddings - 1)
        return self.to_hidden(self.dropout(self.tokens(ids) + self.positions(positions)))


class ConvolutionalEncoder(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        hidden = config.cnn_num_hidden
        self.embed = Embedding(config.source_vocab_size, config.num_embed_source, config.max_seq_len_source,
                               config.embed_dropout_source, hidden)
        self.blocks = nn.ModuleList([
            ConvolutionBlock(hidden, config.cnn_kernel_width_encoder, config.cnn_activation_type,
                             config.cnn_hidden_dropout, causal=False) for _ in range(config.num_layers_encoder)])

    def forward(self, source: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        """(B, S) ids → (B, S, cnn_num_hidden) states; padding positions hold zeros."""
        return self.encode(source, length)[0]

    def encode(self, source: torch.Tensor, length: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The states and the embedded input they started from (both zero on padding)."""
        keep = (torch.arange(source.size(1), device=source.device).unsqueeze(0) < length.unsqueeze(1)).unsqueeze(2)
        positions = torch.arange(source.size(1), device=source.device).expand_as(source)
        embedded = self.embed(source, positions) * keep
        x = embedded
        for block in self.blocks:
            x = (block(x) + x) * SQRT_HALF * keep
        return x, embedded


class MultiStepAttention(nn.Module):
    """One decoder block's attention: its states (B, T, H) and the embedded target input query
    the encoder; the mapped context is added to the states."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.query = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, hidden)

    def forward(self, states: torch.Tensor, target: torch.Tensor, encoded: State) -> tuple[torch.Tensor, torch.Tensor]:
        query = (self.query(states) + target) * SQRT_HALF
        scores = torch.bmm(query, encoded["keys"].transpose(1, 2)).float()
        weights = torch.softmax(scores.masked_fill(~encoded["mask"].unsqueeze(1), -1e9), dim=2).to(states.dtype)
        context = torch.bmm(weights, encoded["values"]) * encoded["scale"].view(-1, 1, 1)
        return (states + self.out(context)) * SQRT_HALF, weights


class ConvolutionalModel(nn.Module):
    """The cnn decoder with its encoder (cnn or rnn); the interface of ``model.RNNModel``."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        hidden, layers = config.cnn_num_hidden, config.num_layers_decoder
        self.encoder = build_encoder(config)
        if encoder_width(config) != hidden:
            self.bridge = nn.Linear(encoder_width(config), hidden, bias=False)
        self.embed = Embedding(config.target_vocab_size, config.num_embed_target, config.max_seq_len_target,
                               config.embed_dropout_target, hidden)
        self.blocks: list[ConvolutionBlock] = nn.ModuleList([  # type: ignore[assignment]
            ConvolutionBlock(hidden, config.cnn_kernel_width_decoder, config.cnn_activation_type,
                             config.cnn_hidden_dropout, causal=True) for _ in range(layers)])
        self.attention = nn.ModuleList([MultiStepAttention(hidden) for _ in range(layers)])
        self.to_embedding = nn.Linear(hidden, config.num_embed_target)
        self.output_dropout = nn.Dropout(config.cnn_hidden_dropout)
        self.output = nn.Linear(config.num_embed_target, config.target_vocab_size)
        initialise(self, config)

    # ---- the interface used by training and beam search -----------------------------------

    def encode(self, source: torch.Tensor, length: torch.Tensor) -> State:
        source, length = source_as_read(self.config, source, length)
        if isinstance(self.encoder, ConvolutionalEncoder):
            keys, embedded = self.encoder.encode(source, length)
            values = (keys + embedded) * SQRT_HALF
        else:
            keys = values = self.encoder(source, length)
        if hasattr(self, "bridge"):
            keys = values = self.bridge(keys)
        mask = torch.arange(source.size(1), device=source.device).unsqueeze(0) < length.unsqueeze(1)
        scale = length.clamp(min=1).to(keys.dtype).sqrt()
        return {"keys": keys, "values": values, "mask": mask, "scale": scale, "length": length}

    def forward(self, source: torch.Tensor, length: torch.Tensor, target_input: torch.Tensor,
                scored: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher forcing: (B, S), (B,), (B, T) → logits (B, T, V), or with ``scored`` (B, T)
        only the logits (N, V) of the positions it marks."""
        encoded = self.encode(source, length)
        positions = torch.arange(target_input.size(1), device=target_input.device).expand_as(target_input)
        target = x = self.embed(target_input, positions)
        for block, attention in zip(self.blocks, self.attention):
            states, _ = attention(block(x), target, encoded)
            x = (states + x) * SQRT_HALF
        return self._logits(x if scored is None else x[scored])

    def init_state(self, encoded: State) -> State:
        """Per block, the inputs of the last ``width - 1`` positions (zeros before the start), and
        the position of the next target token."""
        keys = encoded["keys"]
        width = self.config.cnn_kernel_width_decoder
        state: State = {"position": torch.zeros(keys.size(0), dtype=torch.long, device=keys.device)}
        for index in range(len(self.blocks)):
            state[f"block{index}"] = keys.new_zeros(keys.size(0), width - 1, self.config.cnn_num_hidden)
        return state

    def step(self, previous: torch.Tensor, state: State,
             encoded: State) -> tuple[torch.Tensor, torch.Tensor, State]:
        """One target position: previous token ids (B,) → logits (B, V), attention (B, S), state."""
        target = x = self.embed(previous, state["position"])
        new_state: State = {"position": state["position"] + 1}
        attention_sum = torch.zeros(0)
        for index, (block, attention) in enumerate(zip(self.blocks, self.attention)):
            window = torch.cat([state[f"block{index}"], x.unsqueeze(1)], dim=1)
            new_state[f"block{index}"] = window[:, 1:]
            states, weights = attention(block.step(window).unsqueeze(1), target.unsqueeze(1), encoded)
            x = (states.squeeze(1) + x) * SQRT_HALF
            attention_sum = weights.squeeze(1) if index == 0 else attention_sum + weights.squeeze(1)
        return self._logits(x), attention_sum / len(self.blocks), new_state

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.output_dropout(self.to_embedding(x)))
