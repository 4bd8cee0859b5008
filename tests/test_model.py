"""gpt2lib.model: configs and presets, parameter counts, the forward pass and loss, init, cache, errors."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gpt2lib import GPT, GPTConfig
from gpt2lib.model import PRESETS


def small(**kw) -> GPT:
    torch.manual_seed(kw.pop("seed", 0))
    return GPT(GPTConfig.preset("tiny", vocab_size=kw.pop("vocab_size", 101), **kw))


def analytic_count(c: GPTConfig) -> int:
    """Embeddings + per block (4 d^2 attention + 8 d^2 MLP weights, 9 d biases, 4 d LayerNorm) + final LN."""
    d = c.n_embd
    return c.vocab_size * d + c.block_size * d + c.n_layer * (12 * d * d + 13 * d) + 2 * d


def test_gpt2_has_exactly_124_439_808_parameters():
    with torch.device("meta"):  # shapes only: no memory, no random init
        model = GPT(GPTConfig.preset("gpt2"))
    assert model.num_parameters() == 124_439_808


# OpenAI's sizes as Hugging Face counts them (tied head counted once)
@pytest.mark.parametrize("name,expected", [("gpt2", 124_439_808), ("gpt2-medium", 354_823_168),
                                           ("gpt2-large", 774_030_080), ("gpt2-xl", 1_557_611_200)])
def test_preset_counts_match_the_released_models(name, expected):
    with torch.device("meta"):
        model = GPT(GPTConfig.preset(name))
    assert model.num_parameters() == expected == analytic_count(model.config)


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_builds_with_the_counted_shape(name):
    with torch.device("meta"):
        model = GPT(GPTConfig.preset(name))
    c = model.config
    assert model.num_parameters() == analytic_count(c)
    assert model.num_parameters(non_embedding=True) == analytic_count(c) - (c.vocab_size + c.block_size) * c.n_embd


def test_teaching_presets_have_the_agreed_shapes():
    assert (GPTConfig.preset("tiny").n_layer, GPTConfig.preset("tiny").n_head,
            GPTConfig.preset("tiny").n_embd, GPTConfig.preset("tiny").block_size) == (2, 2, 64, 64)
    s = GPTConfig.preset("small")
    assert (s.n_layer, s.n_head, s.n_embd, s.block_size) == (4, 4, 128, 128)
    assert GPTConfig() == GPTConfig.preset("gpt2")


def test_preset_overrides_and_errors():
    assert GPTConfig.preset("tiny", vocab_size=256, dropout=0.1).vocab_size == 256
    with pytest.raises(ValueError, match="unknown preset 'gpt3'.*gpt2-medium"):
        GPTConfig.preset("gpt3")
    with pytest.raises(TypeError, match="no field"):
        GPTConfig.preset("tiny", n_heads=4)


@pytest.mark.parametrize("kw,match", [
    (dict(n_embd=100, n_head=3), "divisible by n_head"),
    (dict(n_layer=0), "positive int"),
    (dict(vocab_size=-5), "positive int"),
    (dict(dropout=1.0), "dropout"),
    (dict(dropout=True), "dropout"),
    (dict(dropout="0.1"), "dropout"),
    (dict(bias="no"), "bias must be True or False"),
    (dict(bias=0), "bias must be True or False"),
])
def test_bad_configs_are_refused(kw, match):
    with pytest.raises(ValueError, match=match):
        GPTConfig(**kw)


def test_embeddings_are_tied():
    model = small()
    assert model.lm_head.weight is model.wte.weight
    assert model.lm_head.weight.data_ptr() == model.wte.weight.data_ptr()


def test_gpt2_initialisation():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=1000, block_size=64, n_layer=8, n_head=4, n_embd=256))
    residual = 0.02 / math.sqrt(2 * 8)
    for block in model.blocks:
        assert block.attn.w_o.weight.std().item() == pytest.approx(residual, rel=0.05)
        assert block.mlp.proj.weight.std().item() == pytest.approx(residual, rel=0.05)
        assert block.mlp.fc.weight.std().item() == pytest.approx(0.02, rel=0.05)
        assert torch.all(block.attn.w_qkv.bias == 0)
        assert torch.all(block.ln_1.weight == 1)
    assert model.wte.weight.std().item() == pytest.approx(0.02, rel=0.05)


def test_forward_shapes_and_loss():
    model = small()
    idx = torch.randint(0, 101, (3, 12))
    logits, loss = model(idx)
    assert logits.shape == (3, 12, 101) and loss is None
    targets = torch.randint(0, 101, (3, 12))
    logits, loss = model(idx, targets)
    torch.testing.assert_close(loss, F.cross_entropy(logits.reshape(-1, 101), targets.reshape(-1)))
    # at GPT-2's small init the prediction is near uniform, so the loss is near ln(vocab)
    assert abs(loss.item() - math.log(101)) < 0.1


def test_ignored_targets_do_not_count():
    model = small()
    idx = torch.randint(0, 101, (2, 10))
    targets = torch.randint(0, 101, (2, 10))
    masked = targets.clone()
    masked[:, :4] = -100
    logits, loss = model(idx, masked)
    expected = F.cross_entropy(logits[:, 4:].reshape(-1, 101), targets[:, 4:].reshape(-1))
    torch.testing.assert_close(loss, expected)


def test_future_tokens_do_not_change_past_logits():
    model = small().eval()
    idx = torch.randint(0, 101, (1, 20))
    changed = idx.clone()
    changed[0, 15:] = (changed[0, 15:] + 1) % 101
    torch.testing.assert_close(model(idx)[0][:, :15], model(changed)[0][:, :15])


def test_rows_of_a_batch_are_independent():
    model = small().eval()
    idx = torch.randint(0, 101, (4, 16))
    torch.testing.assert_close(model(idx)[0][2:3], model(idx[2:3])[0], atol=1e-5, rtol=1e-5)


def test_every_parameter_gets_a_gradient():
    model = small()
    idx = torch.randint(0, 101, (2, 8))
    model(idx, idx)[1].backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert missing == []


def test_it_learns_a_repeating_sequence():
    model = small(vocab_size=16)
    idx = torch.arange(16).repeat(4)[None, :33]
    x, y = idx[:, :-1], idx[:, 1:]
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(80):
        loss = model(x, y)[1]
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1


def test_dropout_only_in_training_mode():
    model = small(dropout=0.3)
    idx = torch.randint(0, 101, (1, 8))
    assert not torch.equal(model(idx)[0], model(idx)[0])
    model.eval()
    assert torch.equal(model(idx)[0], model(idx)[0])


def test_cache_token_by_token_equals_the_full_pass():
    model = small().eval()
    idx = torch.randint(0, 101, (2, 14))
    full = model(idx)[0]
    cache = model.make_cache(2)
    with torch.no_grad():
        first = model(idx[:, :5], cache=cache)[0]
        rest = [model(idx[:, t:t + 1], cache=cache)[0] for t in range(5, 14)]
    torch.testing.assert_close(torch.cat([first, *rest], dim=1), full, atol=1e-5, rtol=1e-5)
    assert cache.length == 14


def test_cache_cannot_exceed_the_context():
    model = small().eval()
    cache = model.make_cache(1)
    model(torch.zeros(1, 64, dtype=torch.long), cache=cache)
    with pytest.raises(ValueError, match="longer than the context"):
        model(torch.zeros(1, 1, dtype=torch.long), cache=cache)


def test_attention_maps():
    model = small().eval()
    idx = torch.randint(0, 101, (9,))
    maps = model.attention_maps(idx)
    assert maps.shape == (2, 2, 9, 9)
    torch.testing.assert_close(maps.sum(-1), torch.ones(2, 2, 9))
    assert torch.all(maps.triu(diagonal=1) == 0)
    torch.testing.assert_close(model.attention_maps(idx[None]), maps)
    # the first layer's map is the formula applied to that layer's own queries and keys
    with torch.no_grad():
        x = model.wte(idx[None]) + model.wpe(torch.arange(9))
        q, k, _ = model.blocks[0].attn.split_heads(model.blocks[0].ln_1(x))
        expected = torch.softmax((q @ k.transpose(-2, -1) / math.sqrt(32)).masked_fill(
            torch.ones(9, 9, dtype=torch.bool).triu(1), float("-inf")), dim=-1)
    torch.testing.assert_close(maps[0], expected[0])


def test_attention_maps_keeps_the_training_mode_and_takes_one_sequence():
    model = small(dropout=0.5).train()
    a, b = model.attention_maps(torch.arange(6)), model.attention_maps(torch.arange(6))
    assert torch.equal(a, b) and model.training  # no dropout inside, mode restored after
    with pytest.raises(ValueError, match="one sequence"):
        model.attention_maps(torch.zeros(2, 5, dtype=torch.long))


@pytest.mark.parametrize("idx,error,match", [
    (torch.zeros(1, 65, dtype=torch.long), ValueError, r"longer than the context.*idx\[:, -block_size:\]"),
    (torch.tensor([[1, 2, 101]]), ValueError, r"in \[0, 101\), found 101"),
    (torch.tensor([[1, -1, 2]]), ValueError, r"in \[0, 101\), found -1"),
    (torch.randn(1, 5), TypeError, "integer token ids"),
    (torch.zeros(5, dtype=torch.long), ValueError, r"idx\[None\]"),
    (torch.zeros(1, 0, dtype=torch.long), ValueError, "empty"),
    ([[1, 2, 3]], TypeError, "torch.Tensor"),
])
def test_bad_input_gets_a_clear_error(idx, error, match):
    with pytest.raises(error, match=match):
        small()(idx)


def test_bad_targets_get_a_clear_error():
    model = small()
    idx = torch.zeros(2, 5, dtype=torch.long)
    with pytest.raises(ValueError, match="shape of idx"):
        model(idx, torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(TypeError, match="integer"):
        model(idx, torch.zeros(2, 5))


def test_gpt_needs_a_config():
    with pytest.raises(TypeError, match="GPTConfig"):
        GPT({"n_layer": 2})


def test_all_ignored_targets_are_an_error_not_a_nan_loss():
    model = small()
    idx = torch.zeros(2, 5, dtype=torch.long)
    with pytest.raises(ValueError, match="every target is -100"):
        model(idx, torch.full((2, 5), -100))
    targets = torch.full((2, 5), -100)
    targets[1, 3] = 7  # one position left to learn: a finite loss
    assert torch.isfinite(model(idx, targets)[1])


@pytest.mark.parametrize("bad", [101, -3])
def test_targets_out_of_the_vocabulary_are_named(bad):
    model = small()
    idx = torch.zeros(1, 4, dtype=torch.long)
    with pytest.raises(ValueError, match=f"found {bad}"):
        model(idx, torch.tensor([[1, 2, bad, 3]]))


@pytest.mark.parametrize("eos", [5.5, True, "5", 101])
def test_eos_token_id_must_be_an_int_id(eos):
    model = small()
    with pytest.raises(ValueError, match="eos_token_id"):
        model.generate(torch.zeros(1, 2, dtype=torch.long), 3, eos_token_id=eos)
