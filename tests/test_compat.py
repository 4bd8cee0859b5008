"""Old keyword names still work for one release, warn with the new name, and cannot be mixed with it."""
from __future__ import annotations

import pytest
import torch

from gpt2lib.attention import KVCache
from gpt2lib.generation import top_k_filter, top_p_filter
from gpt2lib.model import GPT, GPTConfig
from gpt2lib.training import TrainResult


def test_old_keywords_give_the_same_result_and_name_the_new_one():
    logits = torch.tensor([[3.0, 1.0, 2.0, 0.5]])
    with pytest.warns(DeprecationWarning, match=r"top_k_filter\(k=...\) is now top_k_filter\(top_k=...\)"):
        old = top_k_filter(logits, k=2)
    assert torch.equal(old, top_k_filter(logits, top_k=2))
    with pytest.warns(DeprecationWarning, match="top_p="):
        assert torch.equal(top_p_filter(logits, p=0.5), top_p_filter(logits, top_p=0.5))
    with pytest.warns(DeprecationWarning, match="batch_size="):
        assert KVCache(n_layer=1, batch=2, n_head=1, block_size=4, head_dim=2).shape == (1, 2, 1, 4, 2)
    model = GPT(GPTConfig(vocab_size=16, block_size=8, n_layer=1, n_head=1, n_embd=8))
    with pytest.warns(DeprecationWarning, match="batch_size="):
        assert model.make_cache(batch=3).shape == model.make_cache(batch_size=3).shape
    with pytest.warns(DeprecationWarning, match="folder"):
        assert TrainResult(folder=None).out_dir is None


def test_old_and_new_name_together_is_an_error():
    with pytest.raises(TypeError, match="k is the old name of top_k"):
        top_k_filter(torch.zeros(1, 4), k=2, top_k=2)
