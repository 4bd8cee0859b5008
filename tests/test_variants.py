"""gpt2lib.variants: each post-GPT-2 change proven on its own, then inside GPT-2."""
from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from gpt2lib import GPT, GPTConfig
from gpt2lib.attention import CausalSelfAttention
from gpt2lib.model import MLP
from gpt2lib.variants import (GroupedQueryAttention, RMSNorm, SwiGLU, Variant, VariantGPT, equal_size, rope,
                              swiglu_hidden)

torch.manual_seed(0)
CFG = GPTConfig(vocab_size=97, block_size=16, n_layer=2, n_head=4, n_embd=32)


def test_rmsnorm_is_its_formula_and_pytorchs():
    x = torch.randn(3, 5, 8) * 3 + 1
    norm = RMSNorm(8)
    with torch.no_grad():
        norm.weight.copy_(torch.randn(8))
    by_hand = x / torch.sqrt((x ** 2).mean(-1, keepdim=True) + 1e-5) * norm.weight
    assert_close(norm(x), by_hand)
    if hasattr(torch.nn, "RMSNorm"):
        theirs = torch.nn.RMSNorm(8, eps=1e-5)
        theirs.load_state_dict(norm.state_dict())
        assert_close(norm(x), theirs(x))


def test_rope_scores_depend_only_on_the_distance():
    q, k = torch.randn(1, 1, 1, 16), torch.randn(1, 1, 1, 16)
    score = lambda m, n: float((rope(q, torch.tensor([m])) * rope(k, torch.tensor([n]))).sum())
    for m, n in [(3, 1), (7, 2), (12, 12)]:
        for shift in (1, 5, 40):
            assert score(m, n) == pytest.approx(score(m + shift, n + shift), rel=1e-5, abs=1e-5)
    assert score(5, 1) != pytest.approx(score(5, 2), rel=1e-3)  # another distance, another score
    assert_close(rope(q, torch.tensor([0])), q)  # position 0 is not rotated
    assert_close(rope(q, torch.tensor([9])).norm(), q.norm())  # a rotation keeps the length
    with pytest.raises(ValueError, match="even head size"):
        rope(torch.randn(1, 2, 3, 5), torch.arange(3))


def _split_qkv(package: CausalSelfAttention, gqa: GroupedQueryAttention) -> None:
    C = package.w_qkv.in_features
    state = package.state_dict()
    gqa.load_state_dict({"w_q.weight": state["w_qkv.weight"][:C], "w_q.bias": state["w_qkv.bias"][:C],
                         "w_kv.weight": state["w_qkv.weight"][C:], "w_kv.bias": state["w_qkv.bias"][C:],
                         "w_o.weight": state["w_o.weight"], "w_o.bias": state["w_o.bias"]})


def test_gqa_with_a_kv_head_per_query_head_is_multi_head_attention():
    package, gqa = CausalSelfAttention(32, 4), GroupedQueryAttention(32, 4, n_kv_head=4)
    _split_qkv(package, gqa)
    x = torch.randn(2, 7, 32)
    assert_close(gqa(x), package(x)[0])


def test_gqa_with_one_kv_head_is_multi_query_and_shares_it_with_every_query_head():
    mqa, tiled = GroupedQueryAttention(32, 4, n_kv_head=1), GroupedQueryAttention(32, 4, n_kv_head=4)
    state = mqa.state_dict()
    k_w, v_w = state["w_kv.weight"].split(8)
    k_b, v_b = state["w_kv.bias"].split(8)
    # multi-head attention whose four key heads are one head, four times, and likewise the values
    tiled.load_state_dict({**state, "w_kv.weight": torch.cat([k_w.repeat(4, 1), v_w.repeat(4, 1)]),
                           "w_kv.bias": torch.cat([k_b.repeat(4), v_b.repeat(4)])})
    x = torch.randn(2, 6, 32)
    assert_close(mqa(x), tiled(x))
    assert mqa.w_kv.weight.numel() * 4 == tiled.w_kv.weight.numel()
    with pytest.raises(ValueError, match="n_head by n_kv_head"):
        GroupedQueryAttention(32, 4, n_kv_head=3)


@pytest.mark.parametrize("variant", [Variant(rope=True), Variant(n_kv_head=2), Variant(rope=True, n_kv_head=1)],
                         ids=lambda v: v.name)
def test_attention_variants_stay_causal(variant):
    attn = GroupedQueryAttention(32, 4, variant.n_kv_head, rotary=variant.rope)
    x = torch.randn(1, 8, 32)
    changed = x.clone()
    changed[:, 5:] = torch.randn(1, 3, 32)
    assert_close(attn(x)[:, :5], attn(changed)[:, :5])
    assert not torch.allclose(attn(x)[:, 5:], attn(changed)[:, 5:])


def test_swiglu_holds_about_the_parameters_of_gpt2s_mlp():
    for C in (32, 128, 768):
        ours, theirs = SwiGLU(C), MLP(GPTConfig(n_embd=C, n_head=1))
        n_ours = sum(p.numel() for p in ours.parameters())
        n_theirs = sum(p.numel() for p in theirs.parameters())
        assert abs(n_ours - n_theirs) / n_theirs < 0.03, (C, n_ours, n_theirs)
        assert swiglu_hidden(C) % 8 == 0


def test_the_default_variant_is_gpt2():
    torch.manual_seed(1)
    package, variant = GPT(CFG), VariantGPT(CFG)
    state = {}
    for name, tensor in package.state_dict().items():
        if ".attn.w_qkv." in name:
            head, kind = name.split(".attn.w_qkv.")
            state[f"{head}.attn.w_q.{kind}"] = tensor[:CFG.n_embd]
            state[f"{head}.attn.w_kv.{kind}"] = tensor[CFG.n_embd:]
        elif not name.endswith(".attn.bias"):
            state[name] = tensor
    variant.load_state_dict(state)
    idx = torch.randint(0, CFG.vocab_size, (2, 11))
    (a, loss_a), (b, loss_b) = package(idx, idx), variant(idx, idx)
    assert_close(a, b)
    assert_close(loss_a, loss_b)
    assert variant.num_parameters() == package.num_parameters()
    assert variant.variant.name == "GPT-2"


@pytest.mark.parametrize("variant", [Variant(rmsnorm=True), Variant(rope=True), Variant(swiglu=True),
                                     Variant(n_kv_head=1), Variant(True, True, True, 2)], ids=lambda v: v.name)
def test_each_variant_is_tied_initialised_and_learns(variant):
    torch.manual_seed(2)
    model = VariantGPT(CFG, variant)
    assert model.lm_head.weight is model.wte.weight
    assert (model.wpe is None) == variant.rope
    baseline = VariantGPT(CFG).num_parameters()
    if variant.n_kv_head is None:
        assert abs(model.num_parameters() - baseline) / baseline < 0.03  # the same size, to SwiGLU's rounding
    elif variant == Variant(n_kv_head=variant.n_kv_head):  # GQA alone: smaller by the key/value heads it drops
        dropped = CFG.n_layer * 2 * (CFG.n_head - variant.n_kv_head) * (CFG.n_embd // CFG.n_head) * (CFG.n_embd + 1)
        assert model.num_parameters() == baseline - dropped
    else:
        assert model.num_parameters() < baseline
    idx = torch.randint(0, CFG.vocab_size, (4, 16))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        _, loss = model(idx[:, :-1], idx[:, 1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    with pytest.raises(ValueError, match="longer than the context"):
        model(torch.zeros(1, 17, dtype=torch.long))


@pytest.mark.parametrize("variant", [Variant(), Variant(rmsnorm=True), Variant(rope=True), Variant(swiglu=True),
                                     Variant(n_kv_head=1), Variant(True, True, True, 2)], ids=lambda v: v.name)
def test_equal_size_gives_what_a_swap_frees_back_to_the_mlp(variant):
    sized = equal_size(CFG, variant)
    baseline = VariantGPT(CFG).num_parameters()
    n = VariantGPT(CFG, sized).num_parameters()
    # one hidden unit per layer costs 2C + 1 (GELU, with its bias) or 3C (SwiGLU): the count lands within half of it
    per_unit = CFG.n_layer * (3 * CFG.n_embd if variant.swiglu else 2 * CFG.n_embd + 1)
    assert abs(n - baseline) <= per_unit / 2, (sized, n, baseline)
    if variant == Variant():
        assert sized.mlp_hidden == 4 * CFG.n_embd  # GPT-2 needs nothing given back
    if variant.n_kv_head is not None and not variant.swiglu:
        assert sized.mlp_hidden > 4 * CFG.n_embd  # the dropped key/value heads went to the MLP
    model = VariantGPT(CFG, sized)
    width = model.blocks[0].mlp.w1.out_features if variant.swiglu else model.blocks[0].mlp.fc.out_features
    assert width == sized.mlp_hidden
    _, loss = model(torch.randint(0, CFG.vocab_size, (2, 8)), torch.randint(0, CFG.vocab_size, (2, 8)))
    assert torch.isfinite(loss)
    with pytest.raises(ValueError, match="mlp_hidden"):
        equal_size(CFG, sized)


def _mlp_output_rms(variant: Variant, seed: int = 0) -> float:
    """The RMS of the first block's MLP output, at initialisation, on LayerNorm-like (unit variance) input."""
    torch.manual_seed(seed)
    model = VariantGPT(GPTConfig(vocab_size=97, block_size=16, n_layer=2, n_head=4, n_embd=64), equal_size(
        GPTConfig(vocab_size=97, block_size=16, n_layer=2, n_head=4, n_embd=64), variant))
    with torch.no_grad():
        return float(model.blocks[0].mlp(torch.randn(64, 16, 64)).pow(2).mean().sqrt())


def test_fan_in_init_draws_the_mlp_from_n_0_1_over_n_in_and_leaves_the_rest_as_gpt2s():
    for swiglu in (False, True):
        torch.manual_seed(3)
        gpt2_init = VariantGPT(CFG, Variant(swiglu=swiglu))
        torch.manual_seed(3)
        fan_in = VariantGPT(CFG, Variant(swiglu=swiglu, mlp_init="fan_in"))
        theirs = dict(gpt2_init.named_parameters())
        for name, p in fan_in.named_parameters():
            if ".mlp." in name and p.dim() == 2:
                std = p.size(1) ** -0.5
                assert float(p.detach().std()) == pytest.approx(std, rel=0.1), name  # thousands of draws: within 10%
            else:  # GPT-2's initialisation, drawn first, number for number
                assert torch.equal(p, theirs[name]), name
    assert Variant(swiglu=True, mlp_init="fan_in").name == "SwiGLU, fan-in init"
    assert Variant(mlp_init="fan_in").name == "GPT-2, fan-in init"
    assert equal_size(CFG, Variant(swiglu=True, mlp_init="fan_in")).mlp_init == "fan_in"
    with pytest.raises(ValueError, match="mlp_init must be one of"):
        Variant(mlp_init="xavier")


def test_at_gpt2s_init_swiglu_starts_several_times_smaller_and_fan_in_closes_the_gap():
    gelu, swiglu = _mlp_output_rms(Variant()), _mlp_output_rms(Variant(swiglu=True))
    # a product of two projections of std 0.02 * sqrt(C) each, against GELU of one: several times smaller
    assert swiglu < gelu / 3, (gelu, swiglu)
    fan_gelu, fan_swiglu = _mlp_output_rms(Variant(mlp_init="fan_in")), _mlp_output_rms(Variant(swiglu=True, mlp_init="fan_in"))
    assert 0.5 < fan_swiglu / fan_gelu < 2, (fan_gelu, fan_swiglu)
    assert fan_swiglu > 10 * swiglu
