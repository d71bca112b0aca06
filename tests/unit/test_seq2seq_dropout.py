"""The Transformer's CPU dropout (four mask elements per 64-bit draw) and the attention and encoder
layer that use it: the same distribution as torch's dropout, the same functions as torch's layers."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from sagetext.algorithms.seq2seq.dropout import Dropout, dropout, keep_mask
from sagetext.algorithms.seq2seq.transformer import Encoder, EncoderLayer, attend

COUNT = 1 << 20  # elements per statistical check: the keep rate's standard error is below 0.0003


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5])
def test_each_element_is_kept_with_probability_one_minus_p(p: float) -> None:
    torch.manual_seed(0)
    kept = keep_mask(torch.Size([COUNT]), p).float()
    assert kept.mean().item() == pytest.approx(1 - p, abs=0.002)
    for quarter in range(4):  # each 16-bit slice of a draw, the top one (sign bit always 0) too
        assert kept[quarter::4].mean().item() == pytest.approx(1 - p, abs=0.004)


def test_neighbours_and_successive_masks_are_independent() -> None:
    torch.manual_seed(1)
    p = 0.3
    first = keep_mask(torch.Size([COUNT]), p)
    second = keep_mask(torch.Size([COUNT]), p)
    both = (first[:-1] & first[1:]).float().mean().item()  # two slices of one draw, or of two
    assert both == pytest.approx((1 - p) ** 2, abs=0.003)
    assert (first & second).float().mean().item() == pytest.approx((1 - p) ** 2, abs=0.003)
    assert not torch.equal(first, second)


def test_the_mask_follows_torch_s_seed() -> None:
    torch.manual_seed(5)
    first = keep_mask(torch.Size([3, 7]), 0.5)
    torch.manual_seed(5)
    assert torch.equal(keep_mask(torch.Size([3, 7]), 0.5), first)


def test_kept_values_are_scaled_and_the_gradient_goes_through_the_same_mask() -> None:
    torch.manual_seed(2)
    x = torch.randn(64, 33, requires_grad=True)
    out = dropout(x, 0.25, training=True)
    kept = out != 0
    assert 0 < kept.sum().item() < x.numel()
    assert torch.allclose(out[kept], x[kept] / 0.75)
    out.sum().backward()
    assert x.grad is not None
    assert torch.allclose(x.grad, kept.float() / 0.75)


def test_no_dropout_in_evaluation_or_at_zero_and_everything_dropped_at_one() -> None:
    x = torch.randn(8, 5)
    assert dropout(x, 0.5, training=False) is x
    assert dropout(x, 0.0, training=True) is x
    assert torch.equal(dropout(x, 1.0, training=True), torch.zeros_like(x))
    layer = Dropout(0.5).eval()
    assert torch.equal(layer(x), x)
    with pytest.raises(ValueError, match="1.5"):
        Dropout(1.5)


@pytest.mark.parametrize("causal", [False, True])
def test_attention_in_cpu_training_drops_the_attention_weights_with_that_mask(causal: bool) -> None:
    generator = torch.Generator().manual_seed(3)
    query, keys, values = (torch.randn(2, 4, 6, 8, generator=generator) for _ in range(3))
    mask = torch.ones(2, 1, 1, 6, dtype=torch.bool)
    mask[1, ..., 4:] = False  # the second sequence has 4 real positions
    torch.manual_seed(4)
    out = attend(query, keys, values, 0.2, mask=mask, causal=causal)
    torch.manual_seed(4)
    keep = keep_mask(torch.Size([2, 4, 6, 6]), 0.2)
    allowed = mask & (torch.ones(6, 6, dtype=torch.bool).tril() if causal else True)
    scores = torch.einsum("bhtd,bhsd->bhts", query, keys) / 8 ** 0.5
    weights = torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1)
    assert torch.allclose(out, (weights * keep / 0.8) @ values, atol=1e-5)
    fused = F.scaled_dot_product_attention(query, keys, values, attn_mask=allowed)  # torch's, no dropout
    assert torch.allclose(weights @ values, fused, atol=1e-5)  # the reference above is attention


def _torch_encoder_layer(size: int = 16, heads: int = 4, feed_forward: int = 32) -> nn.TransformerEncoderLayer:
    return nn.TransformerEncoderLayer(size, heads, feed_forward, 0.1, batch_first=True, norm_first=True)


def test_the_encoder_computes_what_torch_s_pre_norm_encoder_does_with_its_parameters() -> None:
    torch.manual_seed(6)
    theirs = nn.TransformerEncoder(_torch_encoder_layer(), 2, enable_nested_tensor=False).eval()
    ours = Encoder(EncoderLayer(16, 4, 32, 0.1), 2).eval()
    ours.load_state_dict(theirs.state_dict())  # strict: the same parameter names and shapes
    x = torch.randn(3, 5, 16)
    real = torch.tensor([[True] * 5, [True] * 3 + [False] * 2, [True] + [False] * 4])
    expected = theirs(x, src_key_padding_mask=~real)
    got = ours(x, real[:, None, None, :])
    assert torch.allclose(got[real], expected[real], atol=1e-5)


def test_an_encoder_layer_draws_its_initial_weights_as_torch_s_does() -> None:
    torch.manual_seed(7)
    theirs = _torch_encoder_layer().state_dict()
    torch.manual_seed(7)
    ours = EncoderLayer(16, 4, 32, 0.1).state_dict()
    assert list(ours) == list(theirs)
    assert all(torch.equal(ours[name], theirs[name]) for name in theirs)
