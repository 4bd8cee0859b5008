"""gpt2lib.hf: Hugging Face GPT-2 checkpoints of several shapes in, ours out, and the errors at the edge.

Every model here is randomly initialised and saved to tmp_path: no download, no network.
"""
from __future__ import annotations

import json

import pytest
import torch

pytest.importorskip("transformers")
from transformers import GPT2Config, GPT2LMHeadModel  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

from gpt2lib import GPT, GPTConfig, OfflineError  # noqa: E402
from gpt2lib.hf import config_from_hf, load_hf  # noqa: E402

hf_logging.set_verbosity_error()

SHAPES = {
    "odd heads": dict(vocab_size=300, n_positions=40, n_layer=2, n_head=3, n_embd=48),
    "short context": dict(vocab_size=500, n_positions=8, n_layer=3, n_head=4, n_embd=32),
    "small vocab": dict(vocab_size=7, n_positions=32, n_layer=1, n_head=2, n_embd=16),
    "one wide head": dict(vocab_size=1000, n_positions=24, n_layer=2, n_head=1, n_embd=80),
}


def random_hf(seed: int = 0, **shape) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    hf = GPT2LMHeadModel(GPT2Config(**shape)).eval()
    with torch.no_grad():  # HF zeroes biases and sets LayerNorm to 1: perturb them, so a wrong map shows
        for name, p in hf.named_parameters():
            if name.endswith("bias") or ".ln_" in name:
                p.add_(0.1 * torch.randn_like(p))
    return hf


@pytest.fixture(scope="module", params=list(SHAPES))
def saved(request, tmp_path_factory):
    shape = SHAPES[request.param]
    hf = random_hf(**shape)
    directory = tmp_path_factory.mktemp(request.param.replace(" ", "_"))
    hf.save_pretrained(directory)
    return hf, directory, shape


def test_logits_match_hugging_face(saved):
    hf, directory, shape = saved
    ours = GPT.from_hf(directory)
    assert ours.config == config_from_hf(shape | {"model_type": "gpt2"})
    assert ours.num_parameters() == hf.num_parameters()
    idx = torch.randint(0, shape["vocab_size"], (3, shape["n_positions"]))
    with torch.no_grad():
        theirs = hf(idx).logits
        mine, _ = ours(idx)
    assert (mine - theirs).abs().max().item() <= 1e-5
    assert ours.lm_head.weight is ours.wte.weight  # still tied after loading


def test_loss_matches_hugging_face(saved):
    hf, directory, shape = saved
    ours = GPT.from_hf(directory)
    idx = torch.randint(0, shape["vocab_size"], (2, shape["n_positions"]))
    with torch.no_grad():
        theirs = hf(idx, labels=idx).loss  # HF shifts the labels inside; ours takes them shifted
        _, mine = ours(idx[:, :-1], idx[:, 1:])
    torch.testing.assert_close(mine, theirs, atol=1e-5, rtol=1e-5)


def test_ours_to_hf_to_ours_is_exact(saved, tmp_path):
    _, directory, shape = saved
    ours = GPT.from_hf(directory)
    ours.to_hf(tmp_path / "out")
    back = GPT.from_hf(tmp_path / "out")
    assert back.config == ours.config
    a, b = ours.state_dict(), back.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_hugging_face_loads_our_export(tmp_path):
    torch.manual_seed(1)
    ours = GPT(GPTConfig(vocab_size=123, block_size=16, n_layer=2, n_head=5, n_embd=40)).eval()
    ours.to_hf(tmp_path)
    hf = GPT2LMHeadModel.from_pretrained(tmp_path).eval()
    idx = torch.randint(0, 123, (2, 16))
    with torch.no_grad():
        assert (hf(idx).logits - ours(idx)[0]).abs().max().item() <= 1e-5
    assert hf.lm_head.weight.data_ptr() == hf.transformer.wte.weight.data_ptr()


def test_legacy_bin_checkpoint_loads_with_weights_only(tmp_path):
    hf = random_hf(2, **SHAPES["odd heads"])
    hf.config.save_pretrained(tmp_path)
    torch.save(hf.state_dict(), tmp_path / "pytorch_model.bin")
    ours = load_hf(tmp_path)
    idx = torch.randint(0, 300, (1, 40))
    with torch.no_grad():
        assert (hf(idx).logits - ours(idx)[0]).abs().max().item() <= 1e-5


def test_a_pickle_that_is_not_just_tensors_is_refused(tmp_path):
    hf = random_hf(2, **SHAPES["small vocab"])
    hf.config.save_pretrained(tmp_path)
    torch.save({"state": hf.state_dict(), "hook": print}, tmp_path / "pytorch_model.bin")
    with pytest.raises(ValueError, match="holds more than tensors.*safetensors"):
        load_hf(tmp_path)


def test_sharded_checkpoint_loads(tmp_path):
    hf = random_hf(3, **SHAPES["one wide head"])
    hf.save_pretrained(tmp_path, max_shard_size="100KB")
    assert (tmp_path / "model.safetensors.index.json").exists()
    ours = load_hf(tmp_path)
    idx = torch.randint(0, 1000, (1, 24))
    with torch.no_grad():
        assert (hf(idx).logits - ours(idx)[0]).abs().max().item() <= 1e-5


def test_square_projections_are_transposed():
    # c_proj is square, so loading it untransposed would raise no shape error: check the layout itself
    hf = random_hf(4, **SHAPES["small vocab"])
    from gpt2lib.hf import hf_to_ours

    state = hf_to_ours(hf.state_dict(), config_from_hf(hf.config.to_dict()))
    conv = hf.transformer.h[0].attn.c_proj.weight  # Conv1D: y = x @ W
    assert torch.equal(state["blocks.0.attn.w_o.weight"], conv.t())  # Linear: y = x @ W.T


def test_checkpoint_that_does_not_fit_the_config(saved):
    _, directory, shape = saved
    wrong = GPTConfig(vocab_size=shape["vocab_size"], block_size=shape["n_positions"],
                      n_layer=shape["n_layer"], n_head=1, n_embd=shape["n_embd"] * 2)
    with pytest.raises(ValueError, match="does not match the config.*config.json"):
        load_hf(directory, config=wrong)
    fewer = GPTConfig(vocab_size=shape["vocab_size"], block_size=shape["n_positions"], n_layer=shape["n_layer"] + 1,
                      n_head=shape["n_head"], n_embd=shape["n_embd"])
    with pytest.raises(ValueError, match="missing"):
        load_hf(directory, config=fewer)


def test_directory_without_a_model(tmp_path):
    with pytest.raises(ValueError, match="holds no Hugging Face model.*config.json"):
        GPT.from_hf(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(ValueError, match="model.safetensors"):
        GPT.from_hf(tmp_path)


def test_a_hub_name_offline_says_what_to_do():
    with pytest.raises(OfflineError, match="offline.*save_pretrained"):
        GPT.from_hf("openai-community/gpt2-this-does-not-exist")


def test_a_file_instead_of_a_directory(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ValueError, match="is a file"):
        GPT.from_hf(tmp_path / "model.safetensors")


@pytest.mark.parametrize("field,value,match", [
    ("activation_function", "relu", "activation_function"),
    ("n_inner", 10, "n_inner"),
    ("scale_attn_by_inverse_layer_idx", True, "scale_attn_by_inverse_layer_idx"),
    ("model_type", "llama", "GPT-2 checkpoints only"),
])
def test_variants_we_do_not_build_are_refused(field, value, match):
    hf = dict(SHAPES["small vocab"], model_type="gpt2")
    hf[field] = value
    with pytest.raises(ValueError, match=match):
        config_from_hf(hf)


def test_export_with_the_gpt2_tokenizer_loads_in_transformers(tmp_path):
    from transformers import AutoTokenizer

    from gpt2lib import BPETokenizer

    torch.manual_seed(5)
    GPT(GPTConfig.preset("tiny")).to_hf(tmp_path, tokenizer="gpt2")
    theirs = AutoTokenizer.from_pretrained(tmp_path)
    text = "Hello, world! GPT-2 reads  bytes.\n"
    assert theirs.encode(text) == BPETokenizer.gpt2().encode(text)


def test_tokenizer_larger_than_the_model_is_refused(tmp_path):
    with pytest.raises(ValueError, match="tokenizer has 50257 tokens but the model only 101"):
        GPT(GPTConfig.preset("tiny", vocab_size=101)).to_hf(tmp_path, tokenizer="gpt2")


# --- OpenAI's GPT-2 where the chapters can have it -----------------------------------------------------

@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An empty Hugging Face cache of this test's own (no network: we are offline)."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("GPT2LIB_OFFLINE", "1")
    return tmp_path / "hub"


def test_find_gpt2_none_when_not_cached_and_offline(hub_cache):
    from gpt2lib.hf import find_gpt2

    assert find_gpt2() is None


def test_find_gpt2_needs_every_file(hub_cache):
    from gpt2lib.hf import find_gpt2
    from hf_standin import write_standin

    snapshot = write_standin(hub_cache, n_layer=1)
    assert find_gpt2() == snapshot
    (snapshot / "vocab.json").unlink()            # transformers' tokenizer could not load it
    assert find_gpt2() is None


def test_chapter_model_takes_openai_path_from_the_cache(hub_cache, capsys):
    from gpt2lib.book import OPENAI_NAME, chapter_model
    from gpt2lib.tokenizer import BPETokenizer
    from hf_standin import write_standin

    snapshot = write_standin(hub_cache, n_layer=1)
    model, tok, name, openai = chapter_model()
    assert openai and name == OPENAI_NAME and "Hugging Face's cache" in capsys.readouterr().out
    assert tok.merges == BPETokenizer.gpt2().merges and model.config.n_layer == 1 and not model.training
    hf = GPT2LMHeadModel.from_pretrained(snapshot).eval()
    ids = torch.tensor([tok.encode("Hello, my name is")])
    with torch.no_grad():
        torch.testing.assert_close(model(ids)[0], hf(ids).logits, atol=1e-4, rtol=1e-4)


# --- the real checkpoint's layout and scale (tests/hf_standin.py) ----------------------------------------

@pytest.fixture(scope="module")
def real_layout_standin(tmp_path_factory):
    """A two-block stand-in of OpenAI's GPT-2 in the hub file's layout, with real-scale logits."""
    from hf_standin import write_standin

    return write_standin(tmp_path_factory.mktemp("hub"), n_layer=2)


def test_the_standin_has_the_real_files_layout(real_layout_standin):
    from safetensors import safe_open

    with safe_open(str(real_layout_standin / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
        mask = f.get_tensor("h.1.attn.bias")
    assert not any(k.startswith("transformer.") for k in keys) and "lm_head.weight" not in keys
    assert {"wte.weight", "wpe.weight", "ln_f.weight", "h.0.attn.c_attn.weight", "h.0.attn.bias"} <= keys
    assert mask.shape == (1, 1, 1024, 1024) and torch.equal(mask[0, 0], torch.ones(1024, 1024).tril())
    config = json.loads((real_layout_standin / "config.json").read_text())
    assert config["n_layer"] == 2 and config["resid_pdrop"] == 0.1  # the real file's dropout: loaders must eval()


def test_load_hf_reads_the_real_layout_at_real_scale(real_layout_standin):
    from hf_standin import OFFSET, SPREAD, logit_statistics

    ours = load_hf(real_layout_standin)
    assert not ours.training and ours.lm_head.weight is ours.wte.weight
    hf = GPT2LMHeadModel.from_pretrained(real_layout_standin).eval()
    from gpt2lib import BPETokenizer

    ids = torch.tensor([BPETokenizer.gpt2().encode("I am female. Hello, my name is")])
    with torch.no_grad():
        mine, theirs = ours(ids)[0], hf(ids).logits
    stats = logit_statistics(theirs)
    # the real model's scale (hf_standin's docstring): an offset near -70, a spread of a few units
    assert OFFSET - 15 < stats["offset"] < OFFSET + 15 and SPREAD / 2 < stats["spread"] < SPREAD * 2, stats
    assert stats["max_abs"] > 50, stats
    # float32 rounding grows with the logits: compared relative to their scale, as the chapters do
    assert (mine - theirs).abs().max().item() <= 1e-5 * stats["max_abs"]
    assert torch.equal(mine.argmax(-1), theirs.argmax(-1))
