"""Weights to and from Hugging Face's ``GPT2LMHeadModel``: the edge where our names meet theirs.

Two differences matter:

* names: their ``transformer.h.3.attn.c_attn`` is our ``blocks.3.attn.w_qkv`` and so on (:func:`name_map`);
* layout: GPT-2's original TensorFlow code multiplied ``x @ W`` with ``W`` stored ``(in, out)``, and Hugging
  Face kept that layout in its ``Conv1D`` layers. ``nn.Linear`` stores ``(out, in)``, so those four weights
  are transposed on the way in and on the way out. (A square ``c_proj`` would load without an error and
  compute nonsense: the shapes cannot catch this, only the names can.)

Reading needs only ``safetensors`` (or ``torch.load(weights_only=True)`` for an old ``.bin``); writing
produces ``config.json`` and ``model.safetensors`` that ``GPT2LMHeadModel.from_pretrained`` loads.
Transformers itself is not needed here.
"""
from __future__ import annotations

import json
import pickle
import re
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ._compat import renamed
from .atomic import write_atomic, write_text_atomic
from .model import GPT, GPTConfig
from .runtime import InputError, OfflineError, is_online

__all__ = ["load_hf", "save_hf", "config_from_hf", "config_to_hf", "hf_to_ours", "ours_to_hf", "find_gpt2",
           "OPENAI_GPT2"]

# OpenAI's 124M model on the hub; the older name "gpt2" redirects to it, and a cache may hold either.
OPENAI_GPT2 = "openai-community/gpt2"
_OPENAI_NAMES = (OPENAI_GPT2, "gpt2")
# What the chapters need of it: the weights, and the tokenizer's two files for transformers' own tokenizer.
_OPENAI_FILES = ("config.json", "model.safetensors", "vocab.json", "merges.txt")

# our suffix -> Hugging Face suffix inside a block; True where the weight is a transposed Conv1D
_BLOCK_MAP: dict[str, tuple[str, bool]] = {
    "ln_1.weight": ("ln_1.weight", False), "ln_1.bias": ("ln_1.bias", False),
    "attn.w_qkv.weight": ("attn.c_attn.weight", True), "attn.w_qkv.bias": ("attn.c_attn.bias", False),
    "attn.w_o.weight": ("attn.c_proj.weight", True), "attn.w_o.bias": ("attn.c_proj.bias", False),
    "ln_2.weight": ("ln_2.weight", False), "ln_2.bias": ("ln_2.bias", False),
    "mlp.fc.weight": ("mlp.c_fc.weight", True), "mlp.fc.bias": ("mlp.c_fc.bias", False),
    "mlp.proj.weight": ("mlp.c_proj.weight", True), "mlp.proj.bias": ("mlp.c_proj.bias", False),
}
_TOP_MAP = {"wte.weight": "transformer.wte.weight", "wpe.weight": "transformer.wpe.weight",
            "ln_f.weight": "transformer.ln_f.weight", "ln_f.bias": "transformer.ln_f.bias"}
# the activations that are GPT-2's tanh approximation of GELU under Hugging Face's names
_TANH_GELU = {"gelu_new", "gelu_pytorch_tanh", "gelu_fast"}
_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                 "pytorch_model.bin.index.json")


def name_map(n_layer: int) -> dict[str, tuple[str, bool]]:
    """Our parameter name -> (Hugging Face name, transpose?) for a model with ``n_layer`` blocks."""
    names = {ours: (theirs, False) for ours, theirs in _TOP_MAP.items()}
    for i in range(n_layer):
        for ours, (theirs, t) in _BLOCK_MAP.items():
            names[f"blocks.{i}.{ours}"] = (f"transformer.h.{i}.{theirs}", t)
    return names


def NAME_MAP(n_layer: int) -> dict[str, tuple[str, bool]]:  # the old name, kept for one release
    """Deprecated: :func:`name_map` (a function named like a constant misled readers). A
    ``PendingDeprecationWarning``, silent in a notebook, so the chapters that still call it print nothing new."""
    warnings.warn("gpt2lib.hf.NAME_MAP is now gpt2lib.hf.name_map", PendingDeprecationWarning, stacklevel=2)
    return name_map(n_layer)


def config_from_hf(hf: dict[str, Any], dropout: float = 0.0) -> GPTConfig:
    """Our config from the fields of a Hugging Face GPT-2 ``config.json``; refuses variants we do not build."""
    if hf.get("model_type", "gpt2") != "gpt2":
        raise InputError(f"this is a {hf.get('model_type')!r} checkpoint; gpt2lib loads GPT-2 checkpoints only")
    act = hf.get("activation_function", "gelu_new")
    n_embd = hf.get("n_embd", 768)
    unsupported = []
    if act not in _TANH_GELU:
        unsupported.append(f"activation_function={act!r} (ours is tanh GELU, 'gelu_new')")
    if hf.get("n_inner") not in (None, 4 * n_embd):
        unsupported.append(f"n_inner={hf['n_inner']} (ours is 4 * n_embd)")
    for flag in ("scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn"):
        if hf.get(flag):
            unsupported.append(f"{flag}=True")
    if not hf.get("scale_attn_weights", True):
        unsupported.append("scale_attn_weights=False")
    if abs(hf.get("layer_norm_epsilon", 1e-5) - 1e-5) > 1e-12:
        unsupported.append(f"layer_norm_epsilon={hf['layer_norm_epsilon']} (ours is 1e-5)")
    if hf.get("tie_word_embeddings", True) is False:
        unsupported.append("tie_word_embeddings=False (ours ties the head to the embedding)")
    if unsupported:
        raise InputError("this GPT-2 variant is not supported: " + "; ".join(unsupported))
    return GPTConfig(vocab_size=hf.get("vocab_size", 50257), block_size=hf.get("n_positions", 1024),
                     n_layer=hf.get("n_layer", 12), n_head=hf.get("n_head", 12), n_embd=n_embd,
                     dropout=dropout, bias=True)


def config_to_hf(config: GPTConfig) -> dict[str, Any]:
    """A Hugging Face GPT-2 ``config.json`` for our config (dropout applied in the same three places)."""
    if not config.bias:
        raise InputError("Hugging Face's GPT-2 always has biases; export a model built with bias=True")
    return {
        "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
        "vocab_size": config.vocab_size, "n_positions": config.block_size, "n_ctx": config.block_size,
        "n_layer": config.n_layer, "n_head": config.n_head, "n_embd": config.n_embd, "n_inner": None,
        "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5, "initializer_range": 0.02,
        "resid_pdrop": config.dropout, "embd_pdrop": config.dropout, "attn_pdrop": config.dropout,
        "scale_attn_weights": True, "scale_attn_by_inverse_layer_idx": False,
        "reorder_and_upcast_attn": False, "tie_word_embeddings": True, "use_cache": True,
        # GPT-2's <|endoftext|> is both; a smaller vocabulary (a model trained here) has no such id
        "bos_token_id": 50256 if config.vocab_size > 50256 else None,
        "eos_token_id": 50256 if config.vocab_size > 50256 else None,
        "torch_dtype": "float32",
    }


def hf_to_ours(state: dict[str, Tensor], config: GPTConfig) -> dict[str, Tensor]:
    """Rename and transpose a Hugging Face state dict into ours, checking every shape against ``config``."""
    # checkpoints saved from GPT2Model (no head) have no "transformer." prefix
    if not any(k.startswith("transformer.") for k in state):
        state = {f"transformer.{k}": v for k, v in state.items()}
    c, out, problems = config, {}, []
    expected = _expected_shapes(c)
    for ours, (theirs, transpose) in name_map(c.n_layer).items():
        if theirs not in state:
            problems.append(f"{theirs} is missing")
            continue
        t = state[theirs]
        t = t.t() if transpose else t
        if tuple(t.shape) != expected[ours]:
            problems.append(f"{theirs}: {tuple(state[theirs].shape)} in the file, config needs "
                            f"{expected[ours][::-1] if transpose else expected[ours]}")
        out[ours] = t.contiguous()
    extra = sorted(k for k in state if re.match(r"transformer\.h\.(\d+)\.", k)
                   and int(k.split(".")[2]) >= c.n_layer)
    if extra:
        problems.append(f"the file has more blocks than n_layer={c.n_layer} (e.g. {extra[0]})")
    if problems:
        raise InputError("checkpoint does not match the config (n_layer, n_embd, vocab_size, block_size): "
                         + "; ".join(problems[:5]) + ("; ..." if len(problems) > 5 else "")
                         + ". Load it with the config.json saved beside it, or pick the matching preset")
    out["lm_head.weight"] = out["wte.weight"]
    return out


def ours_to_hf(model: GPT) -> dict[str, Tensor]:
    """Our weights under Hugging Face's names and layout (the tied head is stored once, as ``wte``)."""
    state = model.state_dict()
    return {theirs: (state[ours].t() if t else state[ours]).detach().contiguous().cpu()
            for ours, (theirs, t) in name_map(model.config.n_layer).items()}


def _expected_shapes(c: GPTConfig) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        return {k: tuple(v.shape) for k, v in GPT(c).state_dict().items()}


def _resolve(path_or_name: str | Path) -> Path:
    """A local directory holding the model, downloading it from the hub first when online."""
    path = Path(path_or_name).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists() or not any((path / f).exists() for f in _WEIGHT_FILES):
            raise InputError(f"{path} holds no Hugging Face model: it needs config.json and one of "
                             f"{', '.join(_WEIGHT_FILES)} (write them with save_pretrained or model.to_hf)")
        return path
    if path.exists():
        raise InputError(f"{path} is a file; pass the directory that holds config.json and the weights")
    name = str(path_or_name)
    if not is_online():
        raise OfflineError(f"no directory {name!r} here, and we are offline so the hub cannot be asked; pass "
                         f"a directory written by save_pretrained (or model.to_hf), or go online")
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(name, allow_patterns=["config.json", "*.safetensors", "*.safetensors.index.json"]))


def find_gpt2(download: bool = True) -> Path | None:
    """The folder of OpenAI's GPT-2 124M in Hugging Face's format, or ``None`` when it cannot be had.

    First Hugging Face's local cache (where ``from_pretrained("gpt2")`` or ``"openai-community/gpt2"``
    left it; ``HF_HOME`` or ``HF_HUB_CACHE`` move it), which needs no network; then, when ``download``
    and online, the hub (about 550 MB, cached for next time). The chapters use it where they can and
    fall back to the book's own model where they cannot.
    """
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # transformers (which brings huggingface_hub) is not installed
        return None
    for name in _OPENAI_NAMES:
        found = [try_to_load_from_cache(name, f) for f in _OPENAI_FILES]
        if all(isinstance(f, str) for f in found):
            folders = {Path(f).parent for f in found}
            if len(folders) == 1:  # one snapshot holds all four
                return folders.pop()
    if not download or not is_online():
        return None
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(OPENAI_GPT2, allow_patterns=list(_OPENAI_FILES)))
    except Exception as exc:  # noqa: BLE001 - any hub failure means: use the book's model instead
        print(f"OpenAI's GPT-2 could not be downloaded ({type(exc).__name__}: {exc})")
        return None


def _read_weights(directory: Path) -> dict[str, Tensor]:
    if (directory / "model.safetensors").exists():
        from safetensors.torch import load_file

        return load_file(str(directory / "model.safetensors"))
    for index_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        if (directory / index_name).exists():
            files = sorted(set(json.loads((directory / index_name).read_text())["weight_map"].values()))
            state: dict[str, Tensor] = {}
            for f in files:
                state.update(_read_one(directory / f))
            return state
    return _read_one(directory / "pytorch_model.bin")


def _read_one(file: Path) -> dict[str, Tensor]:
    if file.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(file))
    # weights_only: a pickle can run code on load; this refuses anything but tensors and plain containers
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise InputError(f"{file} holds more than tensors, so it is not loaded (a pickle can run code); "
                         f"if you trust its source, re-save its state_dict with safetensors") from err


def load_hf(path_or_name: str | Path, config: GPTConfig | None = None, dtype: torch.dtype = torch.float32,
            device: torch.device | str = "cpu", dropout: float = 0.0) -> GPT:
    """A :class:`GPT` with the weights of a Hugging Face GPT-2: a ``save_pretrained`` directory, or a hub
    name such as ``"gpt2"`` when online. ``config`` defaults to the one in ``config.json``."""
    directory = _resolve(path_or_name)
    if config is None:
        config = config_from_hf(json.loads((directory / "config.json").read_text()), dropout=dropout)
    state = hf_to_ours(_read_weights(directory), config)
    with torch.device("meta"):  # no random init of weights that are about to be overwritten
        model = GPT(config)
    model.load_state_dict({k: v.to(device=device, dtype=dtype) for k, v in state.items()}, assign=True)
    model.lm_head.weight = model.wte.weight  # assign=True replaced the shared Parameter: tie again
    return model.eval()


@renamed(directory="folder")
def save_hf(model: GPT, folder: str | Path, tokenizer: Any = None) -> Path:
    """Write ``config.json`` and ``model.safetensors`` for ``GPT2LMHeadModel.from_pretrained(folder)``.

    ``tokenizer`` (a :class:`~gpt2lib.tokenizer.BPETokenizer`, or ``"gpt2"`` for the real vocabulary)
    also writes ``vocab.json`` and ``merges.txt`` so that ``AutoTokenizer`` can load the directory too.
    """
    from safetensors.torch import save_file

    if not isinstance(model, GPT):
        raise TypeError(f"save_hf needs a gpt2lib GPT, got {type(model).__name__}")
    directory = Path(folder)
    directory.mkdir(parents=True, exist_ok=True)
    # Weights first, config last: a folder interrupted mid-export has no config.json, so nothing loads it.
    tensors = ours_to_hf(model)
    write_atomic(directory / "model.safetensors", lambda tmp: save_file(tensors, tmp, metadata={"format": "pt"}))
    write_text_atomic(directory / "config.json", json.dumps(config_to_hf(model.config), indent=2) + "\n")
    if tokenizer is not None:
        if isinstance(tokenizer, str):
            from .tokenizer import BPETokenizer

            if tokenizer != "gpt2":
                raise InputError(f"tokenizer must be a BPETokenizer or 'gpt2', got {tokenizer!r}")
            tokenizer = BPETokenizer.gpt2()
        if getattr(tokenizer, "vocab_size", model.config.vocab_size) > model.config.vocab_size:
            raise InputError(f"tokenizer has {tokenizer.vocab_size} tokens but the model only "
                             f"{model.config.vocab_size}; export the tokenizer the model was trained with")
        tokenizer.save_gpt2_files(directory)
    return directory
