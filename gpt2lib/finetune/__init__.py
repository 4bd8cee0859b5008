"""Fine-tuning a pre-trained GPT for a task (chapters 6.1 and 6.2; ``python -m gpt2lib finetune``).

- :mod:`.tasks`: labelled tasks built from the book's corpus, split by source;
- :mod:`.topics`: which part of Python's reference a run of words comes from (chapter 6.1's task);
- :mod:`.questions`: the questions of instruction tuning, each input once with one answer, held out by
  source and by answer;
- :mod:`.batches`: the prompt format, targets masked to the answer, padding, and :class:`ExampleData`,
  the batch source :func:`gpt2lib.training.train` fine-tunes from (so a fine-tuning run has the
  pre-training loop's guards, atomic checkpoints and exact resume);
- :mod:`.heads`: a classification head on the last real token; which parameters train;
- :mod:`.lora`: low-rank adapters on frozen weights, and merging them back;
- :mod:`.scores`: accuracy and its baselines; greedy answers, exact match and token F1.
"""
from __future__ import annotations

from .batches import IGNORE, PROMPT, ExampleData, answer_targets, prompt_text
from .heads import Classifier, count_parameters, last_token_states, set_trainable
from .lora import DEFAULT_TARGETS, LoRALinear, add_lora, merge_lora
from .scores import (accuracy, answer_questions, answers_and_stops, bag_of_words_baseline, exact_match, majority_baseline, normalise,
                     token_f1)
from .questions import (documented_names, question_audit, question_kind, question_splits, questions,
                        reference_sections)
from .tasks import Example, Splits, acceptability
from .topics import TOPICS, topics

__all__ = ["IGNORE", "PROMPT", "ExampleData", "answer_targets", "prompt_text", "Classifier", "count_parameters",
           "last_token_states", "set_trainable", "DEFAULT_TARGETS", "LoRALinear", "add_lora", "merge_lora",
           "accuracy", "answer_questions", "answers_and_stops", "bag_of_words_baseline", "exact_match", "majority_baseline", "normalise",
           "token_f1", "Example", "Splits", "acceptability", "documented_names", "question_audit", "question_kind",
           "question_splits", "questions", "reference_sections", "TOPICS", "topics"]
