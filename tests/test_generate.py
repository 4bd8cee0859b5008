"""gpt2lib.generation: the filters, the sampling loop with and without cache, eos, streaming, errors."""
from __future__ import annotations

import math

import pytest
import torch

from gpt2lib import GPT, GPTConfig
from gpt2lib.generation import (apply_temperature, filter_logits, generate, sample_next, stream, top_k_filter,
                              top_p_filter)

INF = float("-inf")


@pytest.fixture(scope="module")
def model() -> GPT:
    torch.manual_seed(0)
    m = GPT(GPTConfig.preset("tiny", vocab_size=97, block_size=32)).eval()
    # sharpen the random model a little so that greedy decoding has clear winners and sampling is not flat
    with torch.no_grad():
        m.wte.weight.mul_(8)
    return m


def test_temperature_divides_the_logits():
    logits = torch.tensor([1.0, 2.0, 4.0])
    torch.testing.assert_close(apply_temperature(logits, 2.0), torch.tensor([0.5, 1.0, 2.0]))
    cold = torch.softmax(apply_temperature(logits, 0.1), -1)
    hot = torch.softmax(apply_temperature(logits, 10.0), -1)
    assert cold[2] > 0.99 and hot.max() - hot.min() < 0.2


def test_top_k_keeps_the_k_largest_in_place():
    logits = torch.tensor([[0.1, 3.0, -1.0, 2.0, 0.5]])
    out = top_k_filter(logits, 2)
    assert out.tolist() == [[INF, 3.0, INF, 2.0, INF]]
    assert torch.equal(top_k_filter(logits, 10), logits)  # k beyond the vocabulary keeps all


def test_top_p_keeps_the_smallest_set_reaching_p():
    probs = torch.tensor([0.05, 0.5, 0.15, 0.3])
    logits = probs.log()
    kept = lambda p: (top_p_filter(logits, p) > INF).tolist()  # noqa: E731
    assert kept(0.5) == [False, True, False, False]
    assert kept(0.79) == [False, True, False, True]
    assert kept(0.81) == [False, True, True, True]
    assert kept(1.0) == [True, True, True, True]
    assert kept(1e-6) == [False, True, False, False]  # the most likely token always stays


def test_filters_agree_with_hugging_face():
    pytest.importorskip("transformers")
    from transformers.generation.logits_process import TopKLogitsWarper, TopPLogitsWarper

    torch.manual_seed(1)
    logits = torch.randn(8, 500) * 3
    for p in (0.3, 0.9, 0.99):
        theirs = TopPLogitsWarper(top_p=p)(None, logits.clone())
        assert torch.equal(top_p_filter(logits, p) > INF, theirs > INF)
    for k in (1, 5, 100):
        theirs = TopKLogitsWarper(top_k=k)(None, logits.clone())
        assert torch.equal(top_k_filter(logits, k), theirs)


def test_sampling_follows_the_filtered_distribution():
    logits = torch.tensor([0.0, 1.0, 2.0, 3.0]).repeat(20000, 1)
    g = torch.Generator().manual_seed(0)
    counts = torch.bincount(sample_next(logits, generator=g), minlength=4).float() / 20000
    torch.testing.assert_close(counts, torch.softmax(logits[0], -1), atol=0.015, rtol=0)
    counts = torch.bincount(sample_next(logits, top_k=2, generator=g), minlength=4)
    assert counts[:2].sum() == 0
    expected = torch.softmax(filter_logits(logits[0], 0.5, top_p=0.9), -1)
    counts = torch.bincount(sample_next(logits, 0.5, top_p=0.9, generator=g), minlength=4).float() / 20000
    torch.testing.assert_close(counts, expected, atol=0.015, rtol=0)


def test_greedy_is_the_argmax():
    logits = torch.tensor([[0.1, 5.0, 2.0], [3.0, -1.0, 2.9]])
    assert sample_next(logits, do_sample=False).tolist() == [1, 0]


@pytest.mark.parametrize("kw", [dict(do_sample=False), dict(top_k=10), dict(top_p=0.8, temperature=0.7),
                                dict(temperature=1.3)])
def test_cache_changes_nothing_but_speed(model, kw):
    idx = torch.randint(0, 97, (3, 5), generator=torch.Generator().manual_seed(2))
    # 5 + 40 tokens run past the 32-token context, so the sliding window is covered too
    a = model.generate(idx, 40, use_cache=True, generator=torch.Generator().manual_seed(3), **kw)
    b = model.generate(idx, 40, use_cache=False, generator=torch.Generator().manual_seed(3), **kw)
    assert a.shape == (3, 45) and torch.equal(a, b)
    assert torch.equal(a[:, :5], idx)


def test_seeded_generator_reproduces_and_seeds_differ(model):
    idx = torch.zeros(1, 1, dtype=torch.long)
    runs = [model.generate(idx, 20, generator=torch.Generator().manual_seed(s)) for s in (7, 7, 8)]
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])


def test_top_k_1_equals_greedy(model):
    idx = torch.tensor([[1, 2, 3]])
    assert torch.equal(model.generate(idx, 15, top_k=1, generator=torch.Generator().manual_seed(0)),
                       model.generate(idx, 15, do_sample=False))


def test_greedy_matches_hugging_face(tmp_path):
    pytest.importorskip("transformers")
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(4)
    hf = GPT2LMHeadModel(GPT2Config(vocab_size=211, n_positions=48, n_layer=3, n_head=3, n_embd=48)).eval()
    with torch.no_grad():
        hf.transformer.wte.weight.mul_(10)  # a model with decided preferences, so no near-ties in argmax
    hf.save_pretrained(tmp_path)
    ours = GPT.from_hf(tmp_path)
    prompt = torch.randint(0, 211, (2, 6))
    theirs = hf.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=30,
                         min_new_tokens=30, do_sample=False, pad_token_id=0)
    assert torch.equal(ours.generate(prompt, 30, do_sample=False), theirs)


def test_generation_stops_at_end_of_text(model):
    idx = torch.tensor([[5, 6, 7]])
    free = model.generate(idx, 12, do_sample=False)
    eos = int(free[0, 6])  # the 4th new token
    first = int((free[0, 3:] == eos).nonzero()[0])
    stopped = model.generate(idx, 12, do_sample=False, eos_token_id=eos)
    assert torch.equal(stopped, free[:, :3 + first + 1]) and stopped[0, -1] == eos


def test_finished_rows_are_padded_with_eos(model):
    idx = torch.tensor([[5, 6, 7], [8, 9, 10]])
    free = model.generate(idx, 10, do_sample=False)
    eos = int(free[0, 4])
    out = model.generate(idx, 10, do_sample=False, eos_token_id=eos)
    row0 = out[0, 3:].tolist()
    cut = row0.index(eos)
    assert all(t == eos for t in row0[cut:])
    if eos not in free[1, 3:].tolist():  # the other row never finishes, so all 10 tokens come out
        assert out.shape == (2, 13) and torch.equal(out[1], free[1])


def test_stream_and_callback_give_the_generated_tokens(model):
    idx = torch.tensor([3, 1, 4, 1, 5])
    expected = model.generate(idx[None], 12, do_sample=False)[0, 5:].tolist()
    tokens = []
    for t in stream(model, idx, 12, do_sample=False):
        assert isinstance(t, int)
        assert not torch.is_inference_mode_enabled()  # no grad mode leaks into the caller between tokens
        tokens.append(t)
    assert tokens == expected
    seen = []
    generate(model, idx[None], 12, do_sample=False, callback=lambda ids: seen.append(ids.tolist()))
    assert seen == [[t] for t in expected]


def test_generation_restores_training_mode(model):
    model.train()
    try:
        model.generate(torch.tensor([[1]]), 3)
        assert model.training
    finally:
        model.eval()


def test_zero_new_tokens_returns_the_prompt(model):
    idx = torch.tensor([[1, 2]])
    assert torch.equal(model.generate(idx, 0), idx)


def test_long_prompt_is_cropped_to_the_context(model):
    idx = torch.randint(0, 97, (1, 50))
    out = model.generate(idx, 3, do_sample=False)
    assert torch.equal(out[:, :50], idx)
    assert torch.equal(out[:, 50:], model.generate(idx[:, -32:], 3, do_sample=False)[:, 32:])


@pytest.mark.parametrize("kw,match", [
    (dict(temperature=0), "temperature must be a number > 0.*do_sample=False"),
    (dict(temperature=-1.0), "temperature"),
    (dict(top_p=0.0), r"top_p must be in \(0, 1\]"),
    (dict(top_p=1.5), "top_p"),
    (dict(top_k=0), "top_k must be an int >= 1"),
    (dict(max_new_tokens=-1), "max_new_tokens"),
    (dict(eos_token_id=97), "eos_token_id"),
])
def test_bad_settings_get_a_clear_error(model, kw, match):
    kw = {"max_new_tokens": 5, **kw}
    with pytest.raises(ValueError, match=match):
        model.generate(torch.tensor([[1, 2]]), **kw)


def test_bad_prompts_get_a_clear_error(model):
    with pytest.raises(ValueError, match="empty"):
        model.generate(torch.zeros(1, 0, dtype=torch.long), 5)
    with pytest.raises(TypeError, match="integer token ids"):
        model.generate(torch.rand(1, 3), 5)
    with pytest.raises(ValueError, match="one sequence"):
        list(stream(model, torch.zeros(2, 3, dtype=torch.long), 2))
    with pytest.raises(ValueError, match="top_p"):  # checked before the first token, not on first next()
        stream(model, torch.tensor([1]), 3, top_p=2.0)


def test_filters_refuse_bad_settings():
    with pytest.raises(ValueError, match="temperature"):
        apply_temperature(torch.zeros(3), 0.0)
    with pytest.raises(ValueError, match="top_k"):
        top_k_filter(torch.zeros(3), 0)
    with pytest.raises(ValueError, match="top_p"):
        top_p_filter(torch.zeros(3), -0.1)
    assert math.isfinite(float(filter_logits(torch.zeros(3), top_k=3, top_p=1.0).sum()))
