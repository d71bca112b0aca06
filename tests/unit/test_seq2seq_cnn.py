"""Seq2Seq's convolutional encoder and decoder (``cnn.py``) and the encoder/decoder combinations:
what each ``cnn_*`` hyperparameter shapes, decoding step by step equals teacher forcing for
every combination, padding changes nothing, a tiny cnn model learns digit reversal, and pairs
outside the accepted ones are ClientErrors naming those."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from sagetext.algorithms.seq2seq import artifacts, cnn, data
from sagetext.algorithms.seq2seq import config as cfg
from sagetext.algorithms.seq2seq.beam import beam_search
from sagetext.algorithms.seq2seq.model import RNNModel, build_model
from sagetext.errors import ClientError
from tests.unit.test_seq2seq import TINY_RNN, channels_for, corpus, exact_match, hyperparameters, make_trainer, view  # noqa: F401

TINY_CNN = {**TINY_RNN, "encoder_type": "cnn", "decoder_type": "cnn", "cnn_num_hidden": "32",
            "num_layers_encoder": "2", "num_layers_decoder": "2", "cnn_kernel_width_decoder": "3"}
COMBINATIONS = [("cnn", "cnn"), ("rnn", "cnn"), ("cnn", "rnn")]
PAIRS = [(np.array([4, 5, 6, 7]), np.array([6, 5, 9])), (np.array([7, 8]), np.array([8, 9, 10, 11, 4]))]


def tiny(encoder: str, decoder: str, **changes: str) -> torch.nn.Module:
    raw = {**TINY_CNN, "encoder_type": encoder, "decoder_type": decoder, "rnn_num_hidden": "24", **changes}
    torch.manual_seed(0)
    return build_model(cfg.model_config(view(hyperparameters(raw)), 12, 13))


# ---- combinations -------------------------------------------------------------------------------

@pytest.mark.parametrize("encoder,decoder", cfg.COMBINATIONS)
def test_accepted_combinations_pass(encoder: str, decoder: str) -> None:
    raw = {**TINY_CNN, "encoder_type": encoder, "decoder_type": decoder, "transformer_model_size": "32",
           "transformer_attention_heads": "4"}
    model = build_model(cfg.model_config(view(hyperparameters(raw)), 12, 13))
    assert model(*_batch()).shape == (2, 6, 13)  # the longer target and its </s>


@pytest.mark.parametrize("encoder,decoder", [("rnn", "transformer"), ("transformer", "rnn"),
                                             ("cnn", "transformer"), ("transformer", "cnn")])
def test_other_combinations_are_refused_naming_the_accepted_ones(encoder: str, decoder: str) -> None:
    with pytest.raises(ClientError) as error:
        hyperparameters({**TINY_CNN, "encoder_type": encoder, "decoder_type": decoder})
    assert (f"encoder_type={encoder} with decoder_type={decoder}: expected one of rnn/rnn, rnn/cnn, cnn/rnn, "
            "cnn/cnn, transformer/transformer") in error.value.message


# ---- what the hyperparameters shape -----------------------------------------------------------

def test_cnn_hyperparameters_shape_the_network() -> None:
    model = tiny("cnn", "cnn", cnn_num_hidden="40", cnn_kernel_width_encoder="5", cnn_kernel_width_decoder="2",
                 num_layers_encoder="3", num_layers_decoder="4", num_embed_source="16", num_embed_target="8",
                 cnn_hidden_dropout="0.3", embed_dropout_source="0.1", max_seq_len_source="30",
                 max_seq_len_target="25")
    assert isinstance(model, cnn.ConvolutionalModel) and isinstance(model.encoder, cnn.ConvolutionalEncoder)
    assert [tuple(b.conv.weight.shape) for b in model.encoder.blocks] == [(80, 40, 5)] * 3  # glu: 2 x hidden
    assert [tuple(b.conv.weight.shape) for b in model.blocks] == [(80, 40, 2)] * 4
    assert model.encoder.embed.tokens.weight.shape == (12, 16) and model.embed.tokens.weight.shape == (13, 8)
    assert model.encoder.embed.positions.num_embeddings == 30 and model.embed.positions.num_embeddings == 25
    assert model.encoder.embed.dropout.p == 0.1 and {b.dropout.p for b in model.blocks} == {0.3}
    assert model.output.weight.shape == (13, 8)  # the output layer reads num_embed_target-wide states
    relu = tiny("cnn", "cnn", cnn_activation_type="relu", cnn_num_hidden="40")
    assert tuple(relu.blocks[0].conv.weight.shape) == (40, 40, 3)


@pytest.mark.parametrize("activation", ["glu", "relu", "softrelu", "sigmoid", "tanh"])
def test_each_activation_is_the_one_named(activation: str) -> None:
    block = tiny("cnn", "cnn", cnn_activation_type=activation).blocks[0]
    x = torch.randn(4, 2 * 32 if activation == "glu" else 32)
    expected = {"glu": lambda v: v[:, :32] * torch.sigmoid(v[:, 32:]), "relu": torch.relu,
                "softrelu": lambda v: torch.log1p(torch.exp(v)), "sigmoid": torch.sigmoid, "tanh": torch.tanh}
    assert torch.allclose(block._activate(x), expected[activation](x), atol=1e-6)


def test_rnn_encoder_of_another_width_is_mapped_to_the_cnn_decoder() -> None:
    model = tiny("rnn", "cnn", rnn_num_hidden="24", cnn_num_hidden="32")
    assert model.bridge.weight.shape == (32, 24)
    assert not hasattr(tiny("rnn", "cnn", rnn_num_hidden="32", cnn_num_hidden="32"), "bridge")
    rnn_decoder = tiny("cnn", "rnn", rnn_num_hidden="24", cnn_num_hidden="32")
    assert isinstance(rnn_decoder, RNNModel) and isinstance(rnn_decoder.encoder, cnn.ConvolutionalEncoder)
    assert rnn_decoder.hidden.weight.shape == (24, 24 + 32)  # [decoder state; 32-wide context]


def test_convolutions_follow_xavier_fan_with_the_kernel_width() -> None:
    model = tiny("cnn", "cnn", cnn_num_hidden="40", cnn_kernel_width_encoder="5", weight_init_scale="3.0")
    weight = model.encoder.blocks[0].conv.weight.detach()  # fan in 40 x 5
    bound = (3.0 / 200) ** 0.5
    assert bound * 0.9 < float(weight.abs().max()) <= bound + 1e-6


# ---- decoding -----------------------------------------------------------------------------------

def _batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    batch = data.make_batch(PAIRS, [0, 1])
    return batch.source, batch.source_length, batch.target_input


@pytest.mark.parametrize("encoder,decoder,changes", [
    ("cnn", "cnn", {}), ("cnn", "cnn", {"cnn_activation_type": "tanh", "cnn_kernel_width_decoder": "1"}),
    ("cnn", "cnn", {"cnn_kernel_width_encoder": "4", "cnn_kernel_width_decoder": "6", "num_layers_decoder": "3"}),
    ("rnn", "cnn", {}), ("cnn", "rnn", {"num_layers_decoder": "2"}),
])
def test_step_by_step_decoding_equals_teacher_forcing(encoder: str, decoder: str, changes: dict[str, str]) -> None:
    model = tiny(encoder, decoder, **changes).eval()
    source, length, target_input = _batch()
    with torch.no_grad():
        expected = model(source, length, target_input)
        encoded = model.encode(source, length)
        state = model.init_state(encoded)
        for t in range(target_input.size(1)):
            logits, attention, state = model.step(target_input[:, t], state, encoded)
            assert torch.allclose(logits, expected[:, t], atol=1e-4), t
            assert torch.allclose(attention.sum(1), torch.ones(2), atol=1e-4)
            # each source is read with </s> after it: the second sentence's padding, after its two
            # tokens and its </s>, holds no weight
            assert float(attention[1, 3:].abs().sum()) == 0.0


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("width", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("activation", ["glu", "relu"])
def test_a_block_computes_its_convolution_over_the_padded_sequence(causal: bool, width: int, activation: str) -> None:
    """The block runs its convolution as one matrix product over windows; it must compute what
    torch's conv1d computes with the block's weights (the meaning model files were trained with):
    centred windows in the encoder (an even width looks one more ahead), earlier ones only in the
    decoder."""
    torch.manual_seed(0)
    block = cnn.ConvolutionBlock(16, width, activation, 0.0, causal=causal).eval()
    x = torch.randn(3, 7, 16)
    before = width - 1 if causal else (width - 1) // 2
    padded = torch.nn.functional.pad(x.transpose(1, 2), (before, width - 1 - before))
    expected = block._activate(block.conv(padded).transpose(1, 2))
    with torch.no_grad():
        assert torch.allclose(block(x), expected, atol=1e-5)


@pytest.mark.parametrize("encoder,decoder", COMBINATIONS)
def test_batched_and_single_beam_search_agree(encoder: str, decoder: str) -> None:
    model = tiny(encoder, decoder, cnn_hidden_dropout="0.2", cnn_kernel_width_encoder="4").eval()
    rng = np.random.default_rng(0)
    sources = [rng.integers(4, 12, size=n) for n in (1, 7, 3, 12, 5)]
    batch = data.make_batch([(s, s) for s in sources], list(range(len(sources))))
    together = beam_search(model, batch.source, batch.source_length, 3, 10)
    for index, source in enumerate(sources):
        alone = beam_search(model, torch.from_numpy(source).unsqueeze(0), torch.tensor([len(source)]), 3, 10)[0]
        assert alone.tokens == together[index].tokens
        assert alone.score == pytest.approx(together[index].score, abs=1e-4)
        assert np.allclose(alone.attention, together[index].attention, atol=1e-4)


@pytest.mark.parametrize("encoder,decoder", COMBINATIONS)
def test_every_parameter_learns(encoder: str, decoder: str) -> None:
    """Each parameter gets a gradient (data-parallel training needs that) and dropout is live."""
    model = tiny(encoder, decoder, cnn_hidden_dropout="0.5").train()
    logits = model(*_batch())
    logits.sum().backward()
    assert [name for name, p in model.named_parameters() if p.grad is None] == []
    assert not torch.allclose(logits, model(*_batch()))


# ---- learning -----------------------------------------------------------------------------------

@pytest.mark.slow
def test_cnn_learns_digit_reversal_and_its_model_folder_loads(tmp_path: Path, corpus: dict[str, Path]) -> None:  # noqa: F811
    torch.set_num_threads(1)
    hp = hyperparameters({**TINY_CNN, "learning_rate": "0.002", "max_num_batches": "400"})
    trainer = make_trainer(hp, channels_for(tmp_path, corpus))
    best = trainer.fit()
    assert trainer.evaluate()["accuracy"] >= 0.95
    from sagetext.algorithms.seq2seq.trainer import write_model
    write_model(tmp_path / "model", best, trainer, hp.as_strings())
    meta = json.loads((tmp_path / "model" / "config.json").read_text())
    assert meta["format_version"] == 3 and (meta["model"]["encoder_type"], meta["model"]["decoder_type"]) == (
        "cnn", "cnn") and meta["model"]["source_eos"] is True
    loaded = artifacts.load(tmp_path / "model")
    assert exact_match(loaded.model, trainer.inputs.validation, beam=3) >= 0.9
