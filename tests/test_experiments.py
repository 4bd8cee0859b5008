"""Chapter 8's runs side by side: a run gives the same numbers in a worker process as in this one, the
results come back in the order of the runs, and a bad worker count is refused."""
from __future__ import annotations

import pytest

from gpt2lib import GPT, GPTConfig
from gpt2lib.experiments import Run, byte_data, run_all
from gpt2lib.runtime import InputError
from gpt2lib.training import TrainConfig
from gpt2lib.variants import Variant


def tiny_runs() -> list[Run]:
    config = GPTConfig(vocab_size=byte_data().vocab_size, n_layer=1, n_head=2, n_embd=16, block_size=16)
    schedule = TrainConfig(max_steps=4, batch_size=4, warmup_steps=1, eval_interval=0, log_interval=100, device="cpu")
    return [Run(config, schedule, init_seed=0), Run(config, schedule, init_seed=1, variant=Variant(rope=True)),
            Run(config, schedule, init_seed=0, variant=Variant(rmsnorm=True), eval_batch_size=64)]


def test_a_run_gives_the_same_numbers_in_a_worker_and_here():
    runs = tiny_runs()
    here = run_all(runs, workers=1, progress=False)
    apart = run_all(runs, workers=2, progress=False)
    for a, b in zip(here, apart):
        assert (a.val_loss, a.bits_per_byte, a.non_embedding_parameters) == (b.val_loss, b.bits_per_byte,
                                                                             b.non_embedding_parameters)
    assert here[0].val_loss != here[1].val_loss  # in the order given: the runs differ
    assert all(r.seconds > 0 and r.tokens_per_second > 0 and r.bigram_bits_per_byte > 0 for r in here)


def test_the_parameter_count_leaves_out_the_embeddings_as_gpt_does():
    run = tiny_runs()[0]
    assert run_all([run], workers=1, progress=False)[0].non_embedding_parameters == \
        GPT(run.config).num_parameters(non_embedding=True)


@pytest.mark.parametrize("workers", [0, -1, 1.5])
def test_a_worker_count_that_is_not_a_whole_positive_number_is_refused(workers):
    with pytest.raises(InputError, match="workers must be a whole number"):
        run_all(tiny_runs(), workers=workers, progress=False)
