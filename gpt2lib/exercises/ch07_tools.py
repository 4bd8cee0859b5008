"""Chapter 7's exercises: the small pieces of glue that make the book's code and the standard tools agree.

Comparing two tokenizers needs the first position where their ids part; reading a safetensors file needs
its header (eight bytes of length, then JSON); moving weights from Hugging Face into the book's model
needs a name map and a transpose of every ``Conv1D`` weight. The classic mistakes: ignoring a length
mismatch, reading the length big-endian or keeping the metadata entry, and transposing too little or
too much.
"""
from __future__ import annotations

import json
import random
import struct
from typing import Any

import torch

from ._core import Case, CheckFailed, Exercise, Mistake, compare, register

# --- 7.1 where two lists of token ids first differ ------------------------------------------------


def _first_difference(a: list[int], b: list[int]) -> int:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return -1 if len(a) == len(b) else min(len(a), len(b))


def _first_difference_ignores_length(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return -1


def _first_difference_one_based(a, b):
    i = _first_difference(a, b)
    return i if i == -1 else i + 1


def _first_difference_last(a, b):
    found = -1
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            found = i
    return found if found != -1 or len(a) == len(b) else min(len(a), len(b))


def _ids(rng: random.Random, n: int) -> list[int]:
    return [rng.randrange(50257) for _ in range(n)]


def _first_difference_cases(rng: random.Random) -> list[Case]:
    a = _ids(rng, rng.randint(20, 60))
    changed = list(a)
    k = rng.randrange(1, len(a) - 3)
    changed[k] = (changed[k] + 1) % 50257
    changed[k + 2] = (changed[k + 2] + 7) % 50257  # a second difference later: report the first
    first = list(a)
    first[0] = (first[0] + 1) % 50257
    last = list(a)
    last[-1] = (last[-1] + 10) % 50257  # same leading digits as often as not: "12345" vs "12355"
    cut = rng.randint(1, len(a) - 1)
    return [
        Case("identical ids", (list(a), list(a))),
        Case(f"two ids differ, the first at position {k}", (list(a), changed)),
        Case("the very first id differs", (first, list(a))),
        Case("only the last id differs", (list(a), last)),
        # both orders: a solution that only handles a longer first list must fail
        Case(f"the second list is the first {cut} ids of the first", (list(a), a[:cut])),
        Case(f"the first list is the first {cut} ids of the second", (a[:cut], list(a))),
        Case("one list is empty", ([], a[:3])),
        Case("both empty", ([], [])),
    ]


check_first_difference = register(Exercise(
    "first_difference", number="7.1", chapter=7, title="Where two tokenizers' ids first differ", level="easy", minutes=5,
    reference=_first_difference, cases=_first_difference_cases, int_required=True,
    mistakes=[
        Mistake("a list that is a prefix of the other counted as equal; they differ at the end of the shorter one",
                _first_difference_ignores_length),
        Mistake("you counted positions from 1; they count from 0, as list indices do", _first_difference_one_based),
        Mistake("you reported the last difference; stop at the first mismatch", _first_difference_last),
    ],
))

# --- 7.3 the header of a safetensors file (registered before 7.2, whose helpers are longer) ---------------


def _read_header(data: bytes) -> dict[str, tuple[str, tuple[int, ...]]]:
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    return {name: (info["dtype"], tuple(info["shape"])) for name, info in header.items() if name != "__metadata__"}


def _read_header_keeps_metadata(data):
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            out[name] = ("", tuple(info))
        else:
            out[name] = (info["dtype"], tuple(info["shape"]))
    return out


def _read_header_big_endian(data):
    (n,) = struct.unpack(">Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    return {name: (info["dtype"], tuple(info["shape"])) for name, info in header.items() if name != "__metadata__"}


def _read_header_offsets(data):
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    return {name: (info["dtype"], tuple(info["data_offsets"])) for name, info in header.items()
            if name != "__metadata__"}


def _safetensors_bytes(rng: random.Random, metadata: dict[str, str] | None, n: int | None = None) -> bytes:
    from safetensors.torch import save

    dtypes = [torch.float32, torch.float16, torch.bfloat16, torch.int64]
    tensors = {}
    for i in range(rng.randint(2, 5) if n is None else n):
        shape = tuple(rng.randint(1, 6) for _ in range(rng.randint(1, 3)))
        tensors[f"layer{i}.weight"] = torch.randn(shape).to(rng.choice(dtypes))
    tensors["scalar"] = torch.tensor(3.0)
    return save(tensors, metadata=metadata)


def _header_cases(rng: random.Random) -> list[Case]:
    return [
        Case("tensors with metadata {'format': 'pt'}", (_safetensors_bytes(rng, {"format": "pt"}),)),
        Case("tensors without metadata", (_safetensors_bytes(rng, None),)),
        # a header of more than 255 bytes: a length read from its first byte alone comes out wrong
        Case("twelve tensors (a header of more than 255 bytes)", (_safetensors_bytes(rng, {"format": "pt"}, 12),)),
    ]


check_read_safetensors_header = register(Exercise(
    "read_safetensors_header", number="7.3", chapter=7, title="Read a safetensors header by hand", level="medium", minutes=10,
    reference=_read_header, cases=_header_cases,
    mistakes=[
        Mistake("you kept '__metadata__', which is not a tensor", _read_header_keeps_metadata),
        Mistake("you read the length big-endian; the first 8 bytes are a little-endian unsigned 64-bit "
                "integer (struct format '<Q')", _read_header_big_endian),
        Mistake("you took 'data_offsets' (where the bytes lie) for the shape, which is under 'shape'",
                _read_header_offsets),
    ],
))

# --- 7.2 Hugging Face's GPT-2 state dict in the book's names --------------------------------------

_CONV1D = ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")
_RENAME = {"attn.c_attn": "attn.w_qkv", "attn.c_proj": "attn.w_o", "mlp.c_fc": "mlp.fc", "mlp.c_proj": "mlp.proj",
           "ln_1": "ln_1", "ln_2": "ln_2"}


def _convert(sd: dict[str, torch.Tensor], *, transpose: str = "conv1d", keep_prefix: bool = False,
             head: bool = True) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for name, tensor in sd.items():
        if name == "lm_head.weight":
            if head:
                out[name] = tensor.clone()
            continue
        short = name.removeprefix("transformer.")
        if short.startswith("h."):
            _, layer, rest = short.split(".", 2)
            module, param = rest.rsplit(".", 1)
            new = f"blocks.{layer}.{_RENAME[module]}.{param}"
            is_conv = module in _CONV1D and param == "weight"
        else:
            new, is_conv = short, False
        if keep_prefix:
            new = "transformer." + new
        flip = (transpose == "conv1d" and is_conv) or (transpose == "all" and tensor.dim() == 2)
        out[new] = tensor.t().contiguous() if flip else tensor.clone()
    return out


def _convert_hf_state_dict(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return _convert(sd)


def _convert_no_transpose(sd):
    return _convert(sd, transpose="none")


def _convert_transpose_all(sd):
    return _convert(sd, transpose="all")


def _convert_keeps_prefix(sd):
    return _convert(sd, keep_prefix=True)


def _convert_drops_head(sd):
    return _convert(sd, head=False)


def hf_gpt2_state_dict(n_layer: int, n_embd: int, vocab_size: int, block_size: int) -> dict[str, torch.Tensor]:
    """A random state dict with the names and shapes of ``GPT2LMHeadModel.state_dict()`` (Conv1D weights
    stored as (in, out)), built without importing transformers."""
    C = n_embd
    sd = {"transformer.wte.weight": torch.randn(vocab_size, C), "transformer.wpe.weight": torch.randn(block_size, C)}
    for i in range(n_layer):
        p = f"transformer.h.{i}."
        sd.update({
            p + "ln_1.weight": torch.randn(C), p + "ln_1.bias": torch.randn(C),
            p + "attn.c_attn.weight": torch.randn(C, 3 * C), p + "attn.c_attn.bias": torch.randn(3 * C),
            p + "attn.c_proj.weight": torch.randn(C, C), p + "attn.c_proj.bias": torch.randn(C),
            p + "ln_2.weight": torch.randn(C), p + "ln_2.bias": torch.randn(C),
            p + "mlp.c_fc.weight": torch.randn(C, 4 * C), p + "mlp.c_fc.bias": torch.randn(4 * C),
            p + "mlp.c_proj.weight": torch.randn(4 * C, C), p + "mlp.c_proj.bias": torch.randn(C),
        })
    sd["transformer.ln_f.weight"], sd["transformer.ln_f.bias"] = torch.randn(C), torch.randn(C)
    sd["lm_head.weight"] = sd["transformer.wte.weight"]  # tied, as in GPT2LMHeadModel
    return sd


def _compare_state_dicts(expected: Any, got: Any) -> None:
    if got is None:
        raise CheckFailed("your function returned None: did you forget the `return` statement?")
    if not isinstance(got, dict):
        raise CheckFailed(f"expected a dict of tensors, got {type(got).__name__}")
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    if missing:
        raise CheckFailed(f"missing {len(missing)} name(s), e.g. {missing[:3]}")
    if extra:
        raise CheckFailed(f"{len(extra)} name(s) the book's model does not have, e.g. {extra[:3]}")
    for name in expected:
        try:
            compare(expected[name], got[name], atol=0.0, rtol=0.0)
        except CheckFailed as exc:
            raise CheckFailed(f"'{name}': {exc}") from None


def _convert_cases(rng: random.Random) -> list[Case]:
    heads = rng.choice([2, 4])
    return [
        Case("one layer, width 8", (hf_gpt2_state_dict(1, 8, 11, 5),)),
        Case("a random small model", (hf_gpt2_state_dict(rng.randint(2, 3), heads * rng.randint(2, 5),
                                                         rng.randint(20, 60), rng.randint(4, 9)),)),
    ]


check_convert_hf_state_dict = register(Exercise(
    "convert_hf_state_dict", number="7.2", chapter=7, title="Hugging Face's GPT-2 weights under the book's names",
    level="hard", minutes=20, reference=_convert_hf_state_dict, cases=_convert_cases, compare=_compare_state_dicts,
    mistakes=[
        Mistake("you left the Conv1D weights as they were; Hugging Face stores them as (in, out) and nn.Linear "
                "wants (out, in)", _convert_no_transpose),
        Mistake("you transposed every matrix; only the four Conv1D weights per block need it, not the "
                "embeddings or the head", _convert_transpose_all),
        Mistake("you kept the 'transformer.' prefix, which the book's names do not have", _convert_keeps_prefix),
        Mistake("you dropped 'lm_head.weight'; the book's state dict lists the tied head too", _convert_drops_head),
    ],
))
