"""gpt2lib.finetune: the tasks, the masking and padding, the head, LoRA, the scores, and a fine-tuning run
through train() (its checkpoints and exact resume)."""
from __future__ import annotations

import copy
from collections import Counter

import pytest
import torch
from torch import nn

from gpt2lib.data import load_text, split_text
from gpt2lib.finetune import (IGNORE, Classifier, Example, ExampleData, LoRALinear, acceptability, add_lora,
                              answer_questions, answer_targets, answers_and_stops, bag_of_words_baseline, count_parameters,
                              exact_match, last_token_states, majority_baseline, merge_lora, prompt_text, set_trainable,
                              token_f1)
from gpt2lib.finetune import accuracy
from gpt2lib.finetune.batches import encode_classification
from gpt2lib.model import GPT, GPTConfig
from gpt2lib.runtime import InputError
from gpt2lib.tokenizer import BPETokenizer
from gpt2lib.training import TrainConfig, train

TOK = BPETokenizer([], name="bytes")  # 256 byte ids + end-of-text


def tiny(block: int = 64) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=TOK.vocab_size, block_size=block, n_layer=2, n_head=2, n_embd=32))


# ------------------------------------------------------------------------------------------- tasks
def test_acceptability_is_balanced_seeded_and_shuffles_the_same_words():
    a, b = acceptability(n_train=40, n_val=10, n_test=20, seed=3), acceptability(n_train=40, n_val=10, n_test=20, seed=3)
    assert a == b and a != acceptability(n_train=40, n_val=10, n_test=20, seed=4)
    for split in (a.train, a.val, a.test):
        assert Counter(ex.label for ex in split) == {0: len(split) // 2, 1: len(split) // 2}
        assert all(len(ex.text.split()) == 10 for ex in split)
    # the test items come from the validation text, which the book's model never trained on
    val_text = " ".join(split_text(load_text("python-docs"))[1].split())
    assert all(ex.text in val_text for ex in a.test if ex.label == 1)
    train_text = " ".join(split_text(load_text("python-docs"))[0].split())
    assert all(ex.text not in train_text for ex in a.train if ex.label == 0)  # shuffled: another order


def _normalised(text: str) -> str:
    return " ".join(text.lower().split())


@pytest.fixture(scope="module")
def chapter_splits():
    """The splits chapter 6.1 and `python -m gpt2lib finetune --task acceptability` use."""
    return acceptability(seed=0)


def test_acceptability_is_balanced_at_the_chapters_size(chapter_splits):
    s = chapter_splits
    assert (len(s.train), len(s.val), len(s.test)) == (1600, 150, 100)
    for split in (s.train, s.val, s.test):
        assert Counter(ex.label for ex in split) == {0: len(split) // 2, 1: len(split) // 2}


def test_no_test_run_occurs_in_the_pre_training_text(chapter_splits):
    # the corpus repeats passages: a run of its validation split can occur in its training split too
    seen = _normalised(split_text(load_text("python-docs"))[0])
    for ex in chapter_splits.test:
        assert _normalised(ex.text) not in seen, ex.text
    # nor does any test run's word multiset (its source run, shuffled or not) occur among the training runs
    bags = {tuple(sorted(_normalised(ex.text).split())) for ex in chapter_splits.train + chapter_splits.val}
    assert not any(tuple(sorted(_normalised(ex.text).split())) in bags for ex in chapter_splits.test)


def test_no_item_or_source_run_is_in_two_splits(chapter_splits):
    s = chapter_splits
    texts = [{_normalised(ex.text) for ex in split} for split in (s.train, s.val, s.test)]
    bags = [{tuple(sorted(_normalised(ex.text).split())) for ex in split} for split in (s.train, s.val, s.test)]
    for i, j in ((0, 1), (0, 2), (1, 2)):
        assert not texts[i] & texts[j] and not bags[i] & bags[j]
    # and within a split each source run is used once
    for split, bag in zip((s.train, s.val, s.test), bags):
        assert len(bag) == len(split)


def test_acceptability_refuses_what_the_corpus_cannot_give():
    with pytest.raises(InputError, match="ask for fewer"):
        acceptability(n_test=10_000)
    with pytest.raises(InputError, match="words must be >= 2"):
        acceptability(words=1)


# The questions of chapter 6.2 and their splits: tests/test_finetune_questions.py.


# -------------------------------------------------------------------------------- masking, padding
def test_answer_targets_count_the_answer_and_the_stop_only():
    x, y = answer_targets([5, 6, 7], [8, 9], eot_id=1)
    assert x == [5, 6, 7, 8, 9] and y == [IGNORE, IGNORE, 8, 9, 1]


def test_example_data_pads_on_the_right_and_weights_the_validation_loss_by_target():
    data = ExampleData([([1, 2, 3], [IGNORE, 3, 4]), ([5], [6])], [([1, 2], [IGNORE, 2])], pad_id=0, vocab_size=10)
    x, y = data.batch(torch.tensor([0, 1]), 8, torch.device("cpu"))
    assert x.tolist() == [[1, 2, 3], [5, 0, 0]] and y.tolist() == [[IGNORE, 3, 4], [6, IGNORE, IGNORE]]
    labels = ExampleData([([1, 2], 0), ([3], 1)], [([1], 0)], pad_id=0, vocab_size=10)
    assert labels.batch(torch.tensor([1, 0]), 8, torch.device("cpu"))[1].tolist() == [1, 0]
    with pytest.raises(InputError, match="longer than the run's block_size 2"):
        data.check(GPTConfig(vocab_size=10, block_size=8, n_layer=1, n_head=1, n_embd=8), 2)
    with pytest.raises(InputError, match="token id 6"):
        data.check(GPTConfig(vocab_size=6, block_size=8, n_layer=1, n_head=1, n_embd=8), 8)


# ---------------------------------------------------------------------------------------- the head
def test_last_token_states_reads_each_rows_last_real_position():
    hidden = torch.arange(2 * 4 * 3, dtype=torch.float).view(2, 4, 3)
    assert torch.equal(last_token_states(hidden, torch.tensor([2, 4])), torch.stack([hidden[0, 1], hidden[1, 3]]))
    with pytest.raises(InputError):
        last_token_states(hidden, torch.tensor([0, 4]))


def test_the_classifier_reads_the_last_real_token_and_padding_changes_nothing():
    clf = Classifier(tiny(), 3, pad_id=TOK.eos_token_id).eval()
    eot = TOK.eos_token_id
    short, long = TOK.encode("ab"), TOK.encode("a longer text")
    alone = clf(torch.tensor([short]))[0]
    padded = clf(torch.tensor([short + [eot] * (len(long) - len(short)), long]))[0]
    assert torch.allclose(alone[0], padded[0], atol=1e-6)
    hidden = clf.body.hidden_states(torch.tensor([long]))
    assert torch.allclose(padded[1], clf.head(hidden[0, len(long) - 1]), atol=1e-6)  # no pad: the last position
    hidden = clf.body.hidden_states(torch.tensor([short]))
    assert torch.allclose(alone[0], clf.head(hidden[0, len(short) - 1]), atol=1e-6)  # 'b', not an end-of-text
    assert clf.lengths(torch.tensor([short + [eot] * (len(long) - len(short)), long])).tolist() == [len(short), len(long)]


def test_encode_classification_holds_the_text_alone_and_accuracy_reads_it():
    eot = TOK.eos_token_id
    items = encode_classification([Example("ab", 1), Example("a longer text", 0)], TOK, 64)
    assert items == [(TOK.encode("ab"), 1), (TOK.encode("a longer text"), 0)]  # no closing end-of-text
    with pytest.raises(InputError, match="needs some text"):
        encode_classification([Example("", 1)], TOK, 64)
    clf = Classifier(tiny(), 2, pad_id=eot).eval()
    with torch.no_grad():
        one_by_one = [int(clf(torch.tensor([ids]))[0].argmax()) for ids, _ in items]
    assert accuracy(clf, items, batch_size=2) == sum(p == y for p, (_, y) in zip(one_by_one, items)) / 2


def test_set_trainable_freezes_all_but_the_named_parameters():
    clf = Classifier(tiny(), 2, pad_id=0)
    assert set_trainable(clf, "head") == 32 * 2 + 2
    assert set_trainable(clf, ["head", "body.blocks.1"]) == 66 + sum(p.numel() for p in clf.body.blocks[1].parameters())
    assert set_trainable(clf, "all") == count_parameters(clf, trainable=False)
    with pytest.raises(InputError, match="no parameter is named 'heads'"):
        set_trainable(clf, "heads")


# ------------------------------------------------------------------------------------------- LoRA
def test_lora_starts_as_the_base_layer_trains_only_a_and_b_and_merges_exactly():
    torch.manual_seed(0)
    base = nn.Linear(16, 24)
    lora = LoRALinear(copy.deepcopy(base), rank=4, alpha=8)
    x = torch.randn(5, 16)
    assert torch.equal(lora(x), base(x))  # B = 0: the pre-trained layer, exactly
    assert count_parameters(lora) == 4 * (16 + 24) and not lora.base.weight.requires_grad
    lora(x).sum().backward()
    assert lora.B.grad.abs().sum() > 0 and lora.A.grad.abs().sum() == 0  # A random, B zero: B moves first
    with torch.no_grad():
        lora.B.normal_()
    expected = base(x) + (x @ lora.A.t() @ lora.B.t()) * 2.0  # alpha / rank = 2
    assert torch.allclose(lora(x), expected, atol=1e-5)
    assert torch.allclose(lora.merged()(x), lora(x), atol=1e-5)


def test_add_lora_wraps_the_attention_and_merge_lora_undoes_it():
    model = tiny()
    x = torch.randint(0, 256, (2, 9))
    before = model(x)[0]
    wrapped = add_lora(model, rank=2)
    assert wrapped == [f"blocks.{i}.attn.{n}" for i in range(2) for n in ("w_qkv", "w_o")]
    assert count_parameters(model) == 2 * (2 * (32 + 96) + 2 * (32 + 32))
    assert torch.equal(model(x)[0], before)
    for m in model.modules():
        if isinstance(m, LoRALinear):
            torch.nn.init.normal_(m.B)
    changed = model(x)[0]
    assert not torch.allclose(changed, before)
    merge_lora(model)
    assert not any(isinstance(m, LoRALinear) for m in model.modules())
    assert torch.allclose(model(x)[0], changed, atol=1e-4)
    with pytest.raises(InputError, match="no linear layer"):
        add_lora(tiny(), targets=("q_proj",))


# ----------------------------------------------------------------------------------------- scores
def test_scores():
    assert token_f1("Return a copy", "return a copy of it") == pytest.approx(2 * 1 * 0.6 / 1.6)
    assert token_f1("nothing", "else") == 0.0 and token_f1("", "") == 1.0
    assert exact_match('The "assert" statement', "the assert statement.")
    texts = [Example("good fine nice", 1), Example("bad awful poor", 0)] * 10
    assert bag_of_words_baseline(texts, [Example("nice good", 1), Example("poor bad", 0)]) == 1.0
    assert majority_baseline([Example("a", 1)] * 3 + [Example("b", 0)], [Example("c", 0), Example("d", 1)]) == 0.5


def test_batched_answers_equal_answers_one_at_a_time_and_the_cache_changes_nothing():
    model = tiny(block=128)
    qs = ["Why?", "What does str.upper() do?", "x", "Why not?", "y"]   # two pairs of prompts of one length
    together = answer_questions(model, TOK, qs, max_new_tokens=6)
    assert together == [answer_questions(model, TOK, [q], max_new_tokens=6)[0] for q in qs]
    assert answers_and_stops(model, TOK, qs, max_new_tokens=6, batch_size=1) == \
        answers_and_stops(model, TOK, qs, max_new_tokens=6, use_cache=False)
    with pytest.raises(InputError, match="no room"):
        answer_questions(model, TOK, ["x" * 120], max_new_tokens=4)


class _Always(nn.Module):
    """A stand-in model whose next token is always ``token`` (end-of-text after ``after`` others, if given)."""

    def __init__(self, token: int, after: int | None = None) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1))
        self.token, self.after = token, after
        self.config = GPTConfig(vocab_size=TOK.vocab_size, block_size=128, n_layer=1, n_head=1, n_embd=4)
        self.start = None

    def forward(self, idx):
        logits = torch.zeros(*idx.shape, TOK.vocab_size)
        logits[..., self.token] = 1.0
        if self.after is not None:
            # end-of-text once the longest row holds `after` new tokens: rows are cut at different points
            if self.start is None:
                self.start = idx.size(1)
            if idx.size(1) - self.start >= self.after:
                logits[..., TOK.eos_token_id] = 2.0
        return logits, None


def test_stops_say_whether_the_model_ended_the_answer_not_whether_eot_is_in_the_row():
    qs = ["a", "a much longer question than the first", "mid-sized one"]
    answers, stopped = answers_and_stops(_Always(TOK.encode("z")[0]), TOK, qs, max_new_tokens=5)
    assert answers == ["zzzzz"] * 3 and stopped == [False] * 3  # the short rows are padded with end-of-text
    answers, stopped = answers_and_stops(_Always(TOK.eos_token_id), TOK, qs, max_new_tokens=5)
    assert answers == [""] * 3 and stopped == [True] * 3
    answers, stopped = answers_and_stops(_Always(TOK.encode("z")[0], after=2), TOK, qs, max_new_tokens=8)
    assert all(stopped) and all(set(a) <= {"z"} and 0 < len(a) < 8 for a in answers), answers
    assert answer_questions(_Always(TOK.encode("z")[0]), TOK, qs, max_new_tokens=5) == ["zzzzz"] * 3


# ----------------------------------------------------------------------------- a fine-tuning run
def _instruction_data() -> ExampleData:
    items = [Example(f"What is {i} plus one?", answer=str(i + 1)) for i in range(12)]
    return ExampleData.for_instructions(items[:10], items[10:], TOK, 64)


class Stop(Exception):
    pass


def test_a_fine_tuning_run_resumes_exactly(tmp_path):
    config = TrainConfig(max_steps=6, batch_size=4, lr=1e-3, warmup_steps=1, eval_interval=3, log_interval=1,
                         ckpt_interval=3, seed=0, device="cpu")
    whole = tiny()
    add_lora(whole, rank=2)
    start = copy.deepcopy(whole)
    train(whole, _instruction_data(), config, progress=False)

    def stop_after_the_first_checkpoint(row):
        if row["step"] == 4:
            raise Stop

    with pytest.raises(Stop):
        train(copy.deepcopy(start), _instruction_data(), config, folder=tmp_path / "run", progress=False,
              callback=stop_after_the_first_checkpoint)
    resumed = copy.deepcopy(start)
    result = train(resumed, _instruction_data(), config, folder=tmp_path / "run", resume=True, progress=False)
    assert result.steps == 6
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_prompt_format_is_the_answers_prefix():
    assert prompt_text("Why?") == "### Question:\nWhy?\n### Answer:\n"
    data = _instruction_data()
    ids, targets = data.train[0]
    kept = [t for t in targets if t != IGNORE]
    assert TOK.decode(kept[:-1]) == "1" and kept[-1] == TOK.eos_token_id


def test_the_sections_fine_tune_the_books_model_without_a_cuda_gpu(capsys, monkeypatch):
    from gpt2lib import book

    monkeypatch.setattr(book, "get_device", lambda *a, **k: torch.device("cpu"))
    model, tok, name, openai = book.fine_tuning_model()
    assert (name, openai, tok.vocab_size) == (book.BOOK_NAME, False, 2048)
    assert "no CUDA GPU here" in capsys.readouterr().out
