"""The RNN encoder-decoder with attention that SageMaker Seq2Seq trains (Sockeye 1.x's design).

Encoder: source embeddings, a bidirectional first layer (``rnn_num_hidden`` split across the
two directions), then unidirectional layers, with optional residual connections from
``rnn_first_residual_layer``. Decoder: target embeddings with input feeding (the previous
attentional hidden state), stacked LSTM/GRU cells, attention (``dot``, ``bilinear``,
``mlp``, ``fixed``) on the first layer's output (GNMT-style, feeding the upper layers) or on
the top layer's, and a ``tanh`` hidden layer over [state; context] before the output layer.

The encoder may instead be the convolutional one of ``cnn.py`` (``encoder_type=cnn``); the
attention then reads its ``cnn_num_hidden``-wide states.

Every architecture (this one, ``cnn.py``'s convolutional decoder and ``transformer.py``)
offers the same interface to training and beam search: ``forward`` (teacher forcing →
logits, of every position or only of those marked ``scored``), ``encode``, ``init_state`` and
``step`` (one target token → logits and attention).
Encoded inputs and decoder states are dicts of tensors whose first dimension is the batch, so
beam search can repeat and reorder them without knowing the architecture.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from sagetext.algorithms.seq2seq.config import ModelConfig
from sagetext.algorithms.seq2seq.vocab import EOS_ID, PAD_ID

State = dict[str, torch.Tensor]
RECURRENT_GAIN = 1.414  # MXNet's Orthogonal() default scale, Sockeye 1.x's recurrent init


def build_model(config: ModelConfig) -> nn.Module:
    """The network a ModelConfig describes (weights initialised as configured)."""
    if config.decoder_type == "transformer":
        from sagetext.algorithms.seq2seq.transformer import TransformerModel
        return TransformerModel(config)
    if config.decoder_type == "cnn":
        from sagetext.algorithms.seq2seq.cnn import ConvolutionalModel
        return ConvolutionalModel(config)
    return RNNModel(config)


def build_encoder(config: ModelConfig) -> nn.Module:
    """The rnn or cnn encoder: (B, S) ids, (B,) lengths → (B, S, ``encoder_width``) states."""
    if config.encoder_type == "cnn":
        from sagetext.algorithms.seq2seq.cnn import ConvolutionalEncoder
        return ConvolutionalEncoder(config)
    return RNNEncoder(config)


def encoder_width(config: ModelConfig) -> int:
    """The width of the encoder states that attention reads."""
    return config.cnn_num_hidden if config.encoder_type == "cnn" else config.rnn_num_hidden


def with_source_eos(source: torch.Tensor, length: torch.Tensor,
                    max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each source row (B, S) of ``length`` tokens followed by ``</s>``, as Sockeye's sources
    are: one more column and one more token, except that a row already ``max_len`` long keeps
    its length, its last token becoming ``</s>`` (``max_seq_len_source`` counts it)."""
    width = min(source.size(1) + 1, max_len)
    rows = torch.arange(source.size(0), device=source.device)
    marked = source.new_full((source.size(0), width), PAD_ID)
    marked[:, :min(source.size(1), width)] = source[:, :width]
    at = length.clamp(max=width - 1)
    marked[rows, at] = EOS_ID
    return marked, at + 1


def source_as_read(config: ModelConfig, source: torch.Tensor,
                   length: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The source batch as every architecture's ``encode`` reads it: with ``</s>`` after each
    row when the model was trained so (``config.source_eos``), else unchanged."""
    if not config.source_eos:
        return source, length
    return with_source_eos(source, length, config.max_seq_len_source)


def _rnn(cell: str, inputs: int, hidden: int, bidirectional: bool = False) -> nn.RNNBase:
    kind = nn.LSTM if cell == "lstm" else nn.GRU
    return kind(inputs, hidden, batch_first=True, bidirectional=bidirectional)


class RNNEncoder(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        hidden = config.rnn_num_hidden
        self.embed = nn.Embedding(config.source_vocab_size, config.num_embed_source, padding_idx=PAD_ID)
        self.dropout = nn.Dropout(config.embed_dropout_source)
        self.layers = nn.ModuleList(
            [_rnn(config.rnn_cell_type, config.num_embed_source, hidden // 2, bidirectional=True)]
            + [_rnn(config.rnn_cell_type, hidden, hidden) for _ in range(config.num_layers_encoder - 1)])
        self.residual_from = (config.rnn_first_residual_layer - 1 if config.rnn_residual_connections
                              else len(self.layers))

    def forward(self, source: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        """(B, S) ids → (B, S, rnn_num_hidden) states; padding positions hold zeros."""
        x = self.dropout(self.embed(source))
        lengths = length.cpu()
        for index, layer in enumerate(self.layers):
            packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            out, _ = layer(packed)
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=source.size(1))
            x = out + x if index >= max(1, self.residual_from) else out
        return x


class Attention(nn.Module):
    """Scores a query against the encoder states; returns the context and the weights."""

    def __init__(self, kind: str, query_dim: int, key_dim: int, hidden: int) -> None:
        super().__init__()
        self.kind = kind
        if kind == "mlp":
            self.key_proj = nn.Linear(key_dim, hidden, bias=False)
            self.query_proj = nn.Linear(query_dim, hidden)
            self.score = nn.Linear(hidden, 1, bias=False)
        elif kind == "bilinear":
            self.key_proj = nn.Linear(key_dim, query_dim, bias=False)
        elif kind == "dot" and (hidden != key_dim or query_dim != key_dim):
            self.key_proj = nn.Linear(key_dim, hidden, bias=False)
            self.query_proj = nn.Linear(query_dim, hidden, bias=False)

    def keys(self, memory: torch.Tensor) -> torch.Tensor:
        """What can be computed once per source sentence."""
        return self.key_proj(memory) if hasattr(self, "key_proj") else memory

    def forward(self, query: torch.Tensor, memory: torch.Tensor, keys: torch.Tensor,
                mask: torch.Tensor, length: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.kind == "fixed":  # the last encoder state, whatever the query
            weights = nn.functional.one_hot(length - 1, memory.size(1)).to(memory.dtype)
        else:
            if self.kind == "mlp":
                scores = self.score(torch.tanh(keys + self.query_proj(query).unsqueeze(1))).squeeze(2)
            else:
                q = self.query_proj(query) if hasattr(self, "query_proj") else query
                scores = torch.bmm(keys, q.unsqueeze(2)).squeeze(2)
            weights = torch.softmax(scores.float().masked_fill(~mask, -1e9), dim=1).to(memory.dtype)
        context = torch.bmm(weights.unsqueeze(1), memory).squeeze(1)
        return context, weights


class RNNModel(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        hidden, layers = config.rnn_num_hidden, config.num_layers_decoder
        self.encoder = build_encoder(config)
        source = encoder_width(config)
        self.embed = nn.Embedding(config.target_vocab_size, config.num_embed_target, padding_idx=PAD_ID)
        self.embed_dropout = nn.Dropout(config.embed_dropout_target)
        self.upper_attention = config.rnn_attention_in_upper_layers and layers > 1
        cell = nn.LSTMCell if config.rnn_cell_type == "lstm" else nn.GRUCell
        upper_in = hidden + source if self.upper_attention else hidden
        self.cells = nn.ModuleList([cell(config.num_embed_target + hidden, hidden)]
                                   + [cell(upper_in, hidden) for _ in range(layers - 1)])
        self.residual_from = (config.rnn_first_residual_layer - 1 if config.rnn_residual_connections
                              else layers)
        self.attention = Attention(config.rnn_attention_type, hidden, source, config.rnn_attention_num_hidden)
        self.hidden = nn.Linear(hidden + source, hidden)
        self.hidden_dropout = nn.Dropout(config.rnn_decoder_hidden_dropout)
        self.output = nn.Linear(hidden, config.target_vocab_size)
        states = 2 if config.rnn_cell_type == "lstm" else 1
        if config.rnn_decoder_state_init != "zero":
            self.init_layers = nn.ModuleList([nn.Linear(source, hidden) for _ in range(layers * states)])
        initialise(self, config)

    # ---- the interface used by training and beam search -----------------------------------

    def encode(self, source: torch.Tensor, length: torch.Tensor) -> State:
        source, length = source_as_read(self.config, source, length)
        memory = self.encoder(source, length)
        mask = torch.arange(source.size(1), device=source.device).unsqueeze(0) < length.unsqueeze(1)
        return {"memory": memory, "keys": self.attention.keys(memory), "mask": mask, "length": length}

    def init_state(self, encoded: State) -> State:
        memory, mask, length = encoded["memory"], encoded["mask"], encoded["length"]
        batch, hidden, layers = memory.size(0), self.config.rnn_num_hidden, len(self.cells)
        zeros = memory.new_zeros(batch, layers, hidden)
        state: State = {"feed": memory.new_zeros(batch, hidden)}
        if self.config.rnn_decoder_state_init == "zero":
            summary = None
        elif self.config.rnn_decoder_state_init == "last":
            summary = memory[torch.arange(batch, device=memory.device), length - 1]
        else:  # avg over real positions
            summary = (memory * mask.unsqueeze(2)).sum(1) / length.unsqueeze(1).to(memory.dtype)
        names = ["h", "c"] if self.config.rnn_cell_type == "lstm" else ["h"]
        for k, name in enumerate(names):
            if summary is None:
                state[name] = zeros
            else:
                projections = self.init_layers[k * layers:(k + 1) * layers]
                state[name] = torch.stack([torch.tanh(p(summary)) for p in projections], dim=1)
        return state

    def step(self, previous: torch.Tensor, state: State,
             encoded: State) -> tuple[torch.Tensor, torch.Tensor, State]:
        """One target position: previous token ids (B,) → logits (B, V), attention (B, S), state."""
        hidden, attention, state = self._step_hidden(previous, state, encoded)
        return self.output(hidden), attention, state

    def forward(self, source: torch.Tensor, length: torch.Tensor, target_input: torch.Tensor,
                scored: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher forcing: (B, S), (B,), (B, T) → logits (B, T, V), or with ``scored`` (B, T)
        only the logits (N, V) of the N positions it marks (training skips the padding)."""
        encoded = self.encode(source, length)
        state = self.init_state(encoded)
        hiddens = []
        for t in range(target_input.size(1)):
            hidden, _, state = self._step_hidden(target_input[:, t], state, encoded)
            hiddens.append(hidden)
        stacked = torch.stack(hiddens, dim=1)
        return self.output(stacked if scored is None else stacked[scored])

    # ---- one decoder step -------------------------------------------------------------------

    def _step_hidden(self, previous: torch.Tensor, state: State,
                     encoded: State) -> tuple[torch.Tensor, torch.Tensor, State]:
        lstm = self.config.rnn_cell_type == "lstm"
        x = torch.cat([self.embed_dropout(self.embed(previous)), state["feed"]], dim=1)
        new_h, new_c = [], []
        context = attention = None
        for index, cell in enumerate(self.cells):
            if lstm:
                h, c = cell(x, (state["h"][:, index], state["c"][:, index]))
                new_c.append(c)
            else:
                h = cell(x, state["h"][:, index])
            if index >= max(1, self.residual_from):
                h = h + x[:, :h.size(1)]
            new_h.append(h)
            if index == 0 and self.upper_attention:
                context, attention = self._attend(h, encoded)
            x = torch.cat([h, context], dim=1) if context is not None else h
        if not self.upper_attention:
            context, attention = self._attend(new_h[-1], encoded)
        assert context is not None and attention is not None
        hidden = self.hidden_dropout(torch.tanh(self.hidden(torch.cat([new_h[-1], context], dim=1))))
        new_state: State = {"feed": hidden, "h": torch.stack(new_h, dim=1)}
        if lstm:
            new_state["c"] = torch.stack(new_c, dim=1)
        return hidden, attention, new_state

    def _attend(self, query: torch.Tensor, encoded: State) -> tuple[torch.Tensor, torch.Tensor]:
        return self.attention(query, encoded["memory"], encoded["keys"], encoded["mask"], encoded["length"])


def initialise(model: nn.Module, config: ModelConfig) -> None:
    """MXNet-style initialisation as SageMaker/Sockeye: matrices and convolution kernels
    Xavier-uniform with magnitude ``weight_init_scale`` and the chosen fan (or uniform ±scale);
    recurrent (hidden-to-hidden) matrices orthogonal, whatever ``weight_init_type`` says, as
    Sockeye 1.x does by default (``--rnn-h2h-init orthogonal``: MXNet's ``Orthogonal()``, scale
    ``RECURRENT_GAIN``); biases zero."""
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() < 2:
                param.zero_()
                continue
            if "weight_hh" in name:
                nn.init.orthogonal_(param, gain=RECURRENT_GAIN)
                continue
            if config.weight_init_type == "uniform":
                param.uniform_(-config.weight_init_scale, config.weight_init_scale)
                continue
            window = math.prod(param.shape[2:])  # a convolution's kernel width counts in both fans
            fan_out, fan_in = param.shape[0] * window, param.shape[1] * window
            factor = {"in": fan_in, "out": fan_out, "avg": (fan_in + fan_out) / 2}[config.xavier_factor_type]
            bound = math.sqrt(config.weight_init_scale / factor)
            param.uniform_(-bound, bound)
        for module in model.modules():
            if isinstance(module, nn.Embedding) and module.padding_idx is not None:
                module.weight[module.padding_idx].zero_()
