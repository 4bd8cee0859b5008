"""Examples as tensors: the prompt format, targets masked to the answer, padding, and the
:class:`~gpt2lib.training.sources.BatchSource` that lets :func:`gpt2lib.training.train` fine-tune.

A batch holds examples of different lengths, padded on the right with the end-of-text id up to the
longest. Right padding keeps every real token at the position it had in pre-training (the model's
positions are learned, so left padding would shift them), and the causal mask keeps padding from
reaching any real token. What padding must not do is count: a classifier reads the state of the last
*real* token, and a language-model loss ignores every padded target (-100).
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import Tensor

from ..runtime import InputError
from ..training.sources import BatchSource
from .tasks import Example

__all__ = ["PROMPT", "IGNORE", "prompt_text", "answer_targets", "encode_classification", "encode_instructions",
           "ExampleData"]

IGNORE = -100  # a target the loss skips (cross_entropy's ignore_index)
PROMPT = "### Question:\n{question}\n### Answer:\n"


def prompt_text(question: str) -> str:
    """The prompt a question is asked in; the answer follows it, then end-of-text."""
    return PROMPT.format(question=question)


def answer_targets(prompt_ids: Sequence[int], answer_ids: Sequence[int], eot_id: int) -> tuple[list[int], list[int]]:
    """``(inputs, targets)`` for one question: the inputs are prompt + answer; the targets are the inputs
    shifted left by one, with end-of-text last (the model must learn to stop), and every target that is
    still part of the prompt set to -100, so the loss is the answer's alone."""
    full = list(prompt_ids) + list(answer_ids) + [eot_id]
    inputs, targets = full[:-1], full[1:]
    n_prompt = len(prompt_ids) - 1  # targets 0 .. len(prompt) - 2 are prompt tokens
    return inputs, [IGNORE] * n_prompt + targets[n_prompt:]


def _fit(ids: list[int], block: int, what: str) -> None:
    if len(ids) > block:
        raise InputError(f"{what} is {len(ids)} tokens, longer than the model's context of {block}; "
                         f"use shorter texts (or a larger block_size)")


def encode_classification(examples: Sequence[Example], tokenizer: Any, block: int) -> list[tuple[list[int], int]]:
    """``(ids, label)`` per example: the text's tokens alone, no end-of-text after them (the classifier
    reads the last real token's state, and a batch pads with end-of-text after it); an empty text, or one
    longer than ``block`` tokens, is refused."""
    out = []
    for ex in examples:
        if ex.label is None:
            raise InputError(f"a classification example needs a label: {ex.text[:60]!r}")
        ids = tokenizer.encode(ex.text)
        if not ids:
            raise InputError("a classification example needs some text; got an empty one")
        if tokenizer.eos_token_id in ids:
            raise InputError(f"the example {ex.text[:40]!r}... holds the end-of-text token, which pads the "
                             f"batches; remove it from the text")
        _fit(ids, block, f"the example {ex.text[:40]!r}...")
        out.append((ids, int(ex.label)))
    return out


def encode_instructions(examples: Sequence[Example], tokenizer: Any, block: int) -> list[tuple[list[int], list[int]]]:
    """``(inputs, targets)`` per question (:func:`answer_targets` on the prompt format)."""
    eot = tokenizer.eos_token_id
    out = []
    for ex in examples:
        if ex.answer is None:
            raise InputError(f"a question needs an answer: {ex.text[:60]!r}")
        pair = answer_targets(tokenizer.encode(prompt_text(ex.text)), tokenizer.encode(ex.answer), eot)
        _fit(pair[0], block, f"the question {ex.text[:40]!r}... with its answer")
        out.append(pair)
    return out


def _pad(rows: Sequence[Sequence[int]], value: int) -> Tensor:
    width = max(len(r) for r in rows)
    return torch.tensor([list(r) + [value] * (width - len(r)) for r in rows], dtype=torch.long)


class ExampleData(BatchSource):
    """Encoded examples for :func:`gpt2lib.training.train`: a batch is examples drawn at random (with
    replacement, from the run's generator), padded with ``pad_id``; targets are labels ``(B,)``, or
    token targets ``(B, T)`` padded with -100."""

    def __init__(self, train: list, val: list, *, pad_id: int, vocab_size: int, name: str = "examples") -> None:
        if not train or not val:
            raise InputError(f"fine-tuning needs training and validation examples, got {len(train)} and {len(val)}")
        self.train, self.val, self.pad_id, self.vocab_size, self.name = train, val, pad_id, vocab_size, name

    @classmethod
    def for_classification(cls, train: Sequence[Example], val: Sequence[Example], tokenizer: Any, block: int,
                           name: str = "classification") -> "ExampleData":
        return cls(encode_classification(train, tokenizer, block), encode_classification(val, tokenizer, block),
                   pad_id=tokenizer.eos_token_id, vocab_size=tokenizer.vocab_size, name=name)

    @classmethod
    def for_instructions(cls, train: Sequence[Example], val: Sequence[Example], tokenizer: Any, block: int,
                         name: str = "instructions") -> "ExampleData":
        return cls(encode_instructions(train, tokenizer, block), encode_instructions(val, tokenizer, block),
                   pad_id=tokenizer.eos_token_id, vocab_size=tokenizer.vocab_size, name=name)

    def check(self, model_config: Any, block: int) -> None:
        for split, items in (("training", self.train), ("validation", self.val)):
            longest = max(len(ids) for ids, _ in items)
            if longest > block:
                raise InputError(f"a {split} example is {longest} tokens, longer than the run's block_size {block}")
            top = max(max(ids + (t if isinstance(t, list) else [])) for ids, t in items)
            if top >= model_config.vocab_size:
                raise InputError(f"the {split} examples hold token id {top}, but the model has only "
                                 f"{model_config.vocab_size} ids; encode them with the model's tokenizer")

    def draw(self, gen: torch.Generator, n: int, block: int) -> Tensor:
        return torch.randint(len(self.train), (n,), generator=gen)

    def collate(self, items: Sequence[tuple[list[int], Any]], device: torch.device | str = "cpu") -> tuple[Tensor, Tensor]:
        """``(inputs, targets)`` of ``items`` padded into one batch on ``device``."""
        x = _pad([ids for ids, _ in items], self.pad_id)
        targets = [t for _, t in items]
        y = _pad(targets, IGNORE) if isinstance(targets[0], list) else torch.tensor(targets, dtype=torch.long)
        return x.to(device), y.to(device)

    def batch(self, picks: Tensor, block: int, device: torch.device) -> tuple[Tensor, Tensor]:
        return self.collate([self.train[int(i)] for i in picks], device)

    def val_loss(self, model: torch.nn.Module, *, block: int, batch_size: int, max_batches: int | None,
                 device: torch.device) -> float:
        # Weighted by what each batch counts (answer tokens, or examples), so every target weighs the same.
        total, count = 0.0, 0
        with torch.no_grad():
            for b, start in enumerate(range(0, len(self.val), batch_size)):
                if max_batches is not None and b >= max_batches:
                    break
                x, y = self.collate(self.val[start:start + batch_size], device)
                n = int((y != IGNORE).sum())
                total += float(model(x, y)[1]) * n
                count += n
        return total / count

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "vocab_size": self.vocab_size, "train_examples": len(self.train),
                "val_examples": len(self.val)}
