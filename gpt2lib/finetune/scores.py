"""How well a fine-tuned model does, and what it must beat.

Classification: accuracy, against the majority class and a bag-of-words logistic regression (word
counts in, a class out: what a model that ignores word order can do). Questions: greedy answers, scored
by exact match and token F1 (the SQuAD measures, Rajpurkar et al. 2016: lower-cased words, punctuation
dropped; F1 is the harmonic mean of the precision and recall of the answer's words). Scoring a few
hundred items takes minutes on a CPU: ``progress=True`` shows a ``tqdm`` bar (on stderr) meanwhile.
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Any, Iterator, Sequence

import torch
from torch import nn

from ..runtime import InputError, seed_everything
from .batches import prompt_text
from .tasks import Example

__all__ = ["accuracy", "majority_baseline", "bag_of_words_baseline", "answer_questions", "answers_and_stops", "normalise",
           "exact_match", "token_f1"]


def _bar(progress: bool, total: int, desc: str, unit: str) -> Any:
    """A ``tqdm.auto`` bar on stderr, or None without ``progress``."""
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit)


def _chunks(n: int, batch_size: int, bar: Any) -> Iterator[int]:
    """The starts of the batches of ``n`` items; the bar moves on as each batch is done."""
    for start in range(0, n, batch_size):
        yield start
        if bar is not None:
            bar.update(min(batch_size, n - start))


def _pad_rows(rows: Sequence[Sequence[int]], pad_id: int, width: int | None = None) -> torch.Tensor:
    width = width or max(len(r) for r in rows)
    return torch.tensor([list(r) + [pad_id] * (width - len(r)) for r in rows], dtype=torch.long)


@torch.no_grad()
def accuracy(model: nn.Module, items: Sequence[tuple[list[int], int]], *, batch_size: int = 64,
             progress: bool = False, desc: str = "accuracy") -> float:
    """The fraction of encoded ``(ids, label)`` items a :class:`~gpt2lib.finetune.heads.Classifier` gets right
    (``progress``: a bar labelled ``desc``, item by item)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    right = 0
    bar = _bar(progress, len(items), desc, "item")
    try:
        for start in _chunks(len(items), batch_size, bar):
            chunk = items[start:start + batch_size]
            logits, _ = model(_pad_rows([ids for ids, _ in chunk], model.pad_id).to(device))
            right += int((logits.argmax(-1).cpu() == torch.tensor([label for _, label in chunk])).sum())
    finally:
        model.train(was_training)
        if bar is not None:
            bar.close()
    return right / len(items)


def majority_baseline(train: Sequence[Example], test: Sequence[Example]) -> float:
    """The test accuracy of always answering the training set's most common label."""
    top = Counter(ex.label for ex in train).most_common(1)[0][0]
    return sum(ex.label == top for ex in test) / len(test)


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def bag_of_words_baseline(train: Sequence[Example], test: Sequence[Example], *, steps: int = 300,
                          weight_decay: float = 1e-3, seed: int = 0) -> float:
    """The test accuracy of a logistic regression on word counts (the training set's words), trained
    full-batch with Adam; word order is invisible to it."""
    vocab = {w: i for i, w in enumerate(sorted({w for ex in train for w in _words(ex.text)}))}
    classes = sorted({ex.label for ex in train})

    def counts(examples: Sequence[Example]) -> torch.Tensor:
        x = torch.zeros(len(examples), len(vocab))
        for row, ex in enumerate(examples):
            for w in _words(ex.text):
                if w in vocab:
                    x[row, vocab[w]] += 1
        return x

    seed_everything(seed)
    x, y = counts(train), torch.tensor([classes.index(ex.label) for ex in train])
    linear = nn.Linear(len(vocab), len(classes))
    opt = torch.optim.Adam(linear.parameters(), lr=0.05, weight_decay=weight_decay)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(linear(x), y).backward()
        opt.step()
    with torch.no_grad():
        pred = linear(counts(test)).argmax(-1)
    return sum(classes[int(p)] == ex.label for p, ex in zip(pred, test)) / len(test)


def answer_questions(model: nn.Module, tokenizer: Any, questions: Sequence[str], *, max_new_tokens: int = 64,
                     batch_size: int = 64, progress: bool = False, desc: str = "answering") -> list[str]:
    """Greedy answers to ``questions`` asked in the prompt format, each cut at end-of-text (or at
    ``max_new_tokens``, or where the model's context ends).

    A batch of prompts of different lengths is padded on the right: each row's next token is read at its
    own last position and written just after it, so padding never moves a real token's position.
    ``progress``: a bar labelled ``desc``, question by question (and token by token within a batch)."""
    return answers_and_stops(model, tokenizer, questions, max_new_tokens=max_new_tokens, batch_size=batch_size,
                             progress=progress, desc=desc)[0]


@torch.no_grad()
def answers_and_stops(model: nn.Module, tokenizer: Any, questions: Sequence[str], *, max_new_tokens: int = 64,
                      batch_size: int = 64, progress: bool = False, desc: str = "answering",
                      use_cache: bool = True) -> tuple[list[str], list[bool]]:
    """:func:`answer_questions`'s answers, and for each whether the model ended it with end-of-text (rather
    than being cut at the limit): whether it has learned to stop cannot be read from the text alone.

    With ``use_cache`` (and a model that has ``make_cache``, as :class:`~gpt2lib.model.GPT` does) the
    questions whose prompts have the same length are answered together, one new token per row and step,
    through a KV cache: the same answers, several times faster than recomputing every prompt at every step."""
    if max_new_tokens < 1:
        raise InputError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if use_cache and hasattr(model, "make_cache"):
        return _cached_answers(model, tokenizer, questions, max_new_tokens, batch_size, progress, desc)
    eot, block = tokenizer.eos_token_id, model.config.block_size
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    answers: list[str] = []
    stopped: list[bool] = []
    bar = _bar(progress, len(questions), desc, "question")
    try:
        for start in _chunks(len(questions), batch_size, bar):
            prompts = [tokenizer.encode(prompt_text(q)) for q in questions[start:start + batch_size]]
            longest = max(len(p) for p in prompts)
            if longest >= block:
                raise InputError(f"a prompt of {longest} tokens leaves no room for an answer in a context of "
                                 f"{block}; ask shorter questions")
            steps = min(max_new_tokens, block - longest)  # an answer is cut where the context ends
            seq = _pad_rows(prompts, eot, longest + steps).to(device)
            ends = torch.tensor([len(p) for p in prompts], device=device)   # where each row's next token goes
            done = torch.zeros(len(prompts), dtype=torch.bool, device=device)
            rows = torch.arange(len(prompts), device=device)
            for token in range(steps):
                if bar is not None:  # a batch of answers takes long: say how far into it the answers are
                    bar.set_postfix_str(f"token {token + 1}/{steps}", refresh=False)
                    bar.update(0)
                width = int(ends.max())
                logits, _ = model(seq[:, :width])
                nxt = logits[rows, ends - 1].argmax(-1)
                seq[rows[~done], ends[~done]] = nxt[~done]
                done |= nxt == eot
                ends = torch.where(done, ends, ends + 1)
                if bool(done.all()):
                    break
            for row, p in enumerate(prompts):
                new = seq[row, len(p):].tolist()
                answers.append(tokenizer.decode(new[:new.index(eot)] if eot in new else new).strip())
                stopped.append(bool(done[row]))  # eot in the row is no proof: padding is eot too
    finally:
        model.train(was_training)
        if bar is not None:
            bar.close()
    return answers, stopped


def _decoded(tokenizer: Any, new: list[int], eot: int) -> str:
    return tokenizer.decode(new[:new.index(eot)] if eot in new else new).strip()


@torch.no_grad()
def _cached_answers(model: nn.Module, tokenizer: Any, questions: Sequence[str], max_new_tokens: int, batch_size: int,
                    progress: bool, desc: str) -> tuple[list[str], list[bool]]:
    """Greedy answers through a KV cache. Rows share one cache length, so a batch holds prompts of one
    length: no padding at all, and each step feeds one token per row."""
    eot, block = tokenizer.eos_token_id, model.config.block_size
    prompts = [tokenizer.encode(prompt_text(q)) for q in questions]
    longest = max((len(p) for p in prompts), default=0)
    if longest >= block:
        raise InputError(f"a prompt of {longest} tokens leaves no room for an answer in a context of "
                         f"{block}; ask shorter questions")
    by_length: dict[int, list[int]] = {}
    for i, p in enumerate(prompts):
        by_length.setdefault(len(p), []).append(i)
    batches = [rows[k:k + batch_size] for _, rows in sorted(by_length.items()) for k in range(0, len(rows), batch_size)]
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    answers, stopped = [""] * len(prompts), [False] * len(prompts)
    bar = _bar(progress, len(prompts), desc, "question")
    try:
        for rows in batches:
            length = len(prompts[rows[0]])
            steps = min(max_new_tokens, block - length)  # an answer is cut where the context ends
            cache = model.make_cache(len(rows), length + steps)
            logits, _ = model(torch.tensor([prompts[i] for i in rows], device=device), cache=cache)
            new = torch.full((len(rows), steps), eot, dtype=torch.long, device=device)
            done = torch.zeros(len(rows), dtype=torch.bool, device=device)
            for step in range(steps):
                nxt = logits[:, -1].argmax(-1)
                new[~done, step] = nxt[~done]          # a finished row keeps end-of-text
                done |= nxt == eot
                if bool(done.all()) or step == steps - 1:
                    break
                logits, _ = model(nxt[:, None], cache=cache)
            for k, i in enumerate(rows):
                answers[i], stopped[i] = _decoded(tokenizer, new[k].tolist(), eot), bool(done[k])
            if bar is not None:
                bar.update(len(rows))
    finally:
        model.train(was_training)
        if bar is not None:
            bar.close()
    return answers, stopped


def normalise(text: str) -> str:
    """Lower case, words only (punctuation and quotes dropped), single spaces."""
    return " ".join(_words(text))


def exact_match(prediction: str, reference: str) -> bool:
    return normalise(prediction) == normalise(reference)


def token_f1(prediction: str, reference: str) -> float:
    """The F1 of the words ``prediction`` shares with ``reference`` (each word counted as often as both have it)."""
    pred, ref = _words(prediction), _words(reference)
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)
