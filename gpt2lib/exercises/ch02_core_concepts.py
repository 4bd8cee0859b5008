"""Chapter 2's exercises: what GPT-2's configuration implies, computed by hand.

The answers are integers and shapes, so the checkers compare exactly; the classic mistakes are counting
an output layer that GPT-2 shares with its input embedding, forgetting the position embeddings or the
biases, an MLP that is not 4x wide, and attention scores counted without the causal mask.
"""
from __future__ import annotations

from ._core import Case, Exercise, Mistake, register

# --- 2.2 the parameter count of a configuration ----------------------------------------------------

def _count(vocab_size: int, block_size: int, n_layer: int, n_embd: int, *, tied: bool = True,
           positions: bool = True, biases: bool = True, layernorms: bool = True, mlp: int = 4) -> int:
    C = n_embd
    per_layer = 3 * C * C + C * C + 2 * mlp * C * C  # W_qkv, W_o, the MLP's two matrices
    if biases:
        per_layer += 3 * C + C + mlp * C + C
    if layernorms:
        per_layer += 2 * 2 * C  # two LayerNorms, each a weight and a bias
    total = vocab_size * C + n_layer * per_layer
    total += block_size * C if positions else 0
    total += 2 * C if layernorms else 0  # the final LayerNorm
    total += 0 if tied else vocab_size * C
    return total

def _count_parameters(vocab_size: int, block_size: int, n_layer: int, n_embd: int) -> int:
    return _count(vocab_size, block_size, n_layer, n_embd)

def _count_untied(vocab_size, block_size, n_layer, n_embd):
    return _count(vocab_size, block_size, n_layer, n_embd, tied=False)

def _count_no_positions(vocab_size, block_size, n_layer, n_embd):
    return _count(vocab_size, block_size, n_layer, n_embd, positions=False)

def _count_no_biases(vocab_size, block_size, n_layer, n_embd):
    return _count(vocab_size, block_size, n_layer, n_embd, biases=False)

def _count_no_layernorm(vocab_size, block_size, n_layer, n_embd):
    return _count(vocab_size, block_size, n_layer, n_embd, layernorms=False)

def _count_narrow_mlp(vocab_size, block_size, n_layer, n_embd):
    return _count(vocab_size, block_size, n_layer, n_embd, mlp=1)

def _count_cases(rng):
    heads = rng.choice([2, 4, 8])
    return [
        Case("GPT-2 small (124M)", (50257, 1024, 12, 768)),
        Case("a tiny model", (rng.randint(50, 500), rng.choice([16, 32, 64]), rng.randint(1, 4), heads * rng.randint(4, 16))),
        Case("a model with more positions than words", (rng.randint(20, 60), rng.choice([128, 256]), rng.randint(2, 6),
                                                        heads * rng.randint(2, 8))),
        Case("GPT-2 XL", (50257, 1024, 48, 1600)),
    ]

# --- 2.1 the shapes inside the model --------------------------------------------------------------

def _shapes(B: int, T: int, n_embd: int, n_head: int, vocab_size: int, *, heads_transposed: bool = True,
            mlp: int = 4, all_logits: bool = True, scores_full: bool = True) -> dict:
    d = n_embd // n_head
    return {
        "embeddings": (B, T, n_embd),
        "qkv": (B, T, 3 * n_embd),
        "q_heads": (B, n_head, T, d) if heads_transposed else (B, T, n_head, d),
        "scores": (B, n_head, T, T) if scores_full else (B, n_head, T, d),
        "mlp_hidden": (B, T, mlp * n_embd),
        "block_output": (B, T, n_embd),
        "logits": (B, T, vocab_size) if all_logits else (B, vocab_size),
    }

def _model_shapes(B, T, n_embd, n_head, vocab_size):
    return _shapes(B, T, n_embd, n_head, vocab_size)

def _shapes_untransposed(B, T, n_embd, n_head, vocab_size):
    return _shapes(B, T, n_embd, n_head, vocab_size, heads_transposed=False)

def _shapes_narrow_mlp(B, T, n_embd, n_head, vocab_size):
    return _shapes(B, T, n_embd, n_head, vocab_size, mlp=1)

def _shapes_last_logits(B, T, n_embd, n_head, vocab_size):
    return _shapes(B, T, n_embd, n_head, vocab_size, all_logits=False)

def _shapes_scores(B, T, n_embd, n_head, vocab_size):
    return _shapes(B, T, n_embd, n_head, vocab_size, scores_full=False)

def _compare_shapes(expected: dict, got) -> None:
    from ._core import CheckFailed

    if got is None:
        raise CheckFailed("your function returned None: did you forget the `return` statement?")
    if not isinstance(got, dict):
        raise CheckFailed(f"expected a dict of shapes, got a {type(got).__name__}")
    missing = [k for k in expected if k not in got]
    if missing:
        raise CheckFailed(f"missing keys: {missing}")
    for key, shape in expected.items():
        try:
            value = tuple(int(n) for n in got[key])
        except (TypeError, ValueError):
            raise CheckFailed(f"'{key}': expected a tuple of ints, got {got[key]!r}") from None
        if value != shape:
            raise CheckFailed(f"'{key}': expected {shape}, got {value}")

def _shape_cases(rng):
    return [
        Case("GPT-2 small, batch 4 x 1024 tokens", (4, 1024, 768, 12, 50257)),
        Case("a small model", (rng.randint(1, 8), rng.randint(5, 64), 64 * (h := rng.choice([2, 4])), h, rng.randint(100, 1000))),
        Case("one sequence of 7 tokens, 3 heads", (1, 7, 48, 3, 97)),
    ]

check_model_shapes = register(Exercise(
    "model_shapes", number="2.1", chapter=2, title="The shape of every tensor on the way from ids to logits", level="easy", minutes=10,
    reference=_model_shapes, cases=_shape_cases, compare=_compare_shapes,
    mistakes=[
        Mistake("the heads stayed after the positions, (B, T, n_head, head_dim); they move in front, "
                "(B, n_head, T, head_dim), so that each head is a batch of (T, d) matrices", _shapes_untransposed),
        Mistake("the MLP's hidden layer were n_embd wide; it widens each vector to 4 x n_embd", _shapes_narrow_mlp),
        Mistake("the model predicted only at the last position; it predicts a next token at EVERY position, "
                "so the logits keep the T dimension", _shapes_last_logits),
        Mistake("the scores were (B, n_head, T, head_dim); every query meets every key: (B, n_head, T, T)",
                _shapes_scores),
    ],
))

# Registered after 2.1 (its helpers are above): the progress list follows the chapter's numbering.
check_count_parameters = register(Exercise(
    "count_parameters", number="2.2", chapter=2, title="The parameter count of a GPT-2 configuration", level="medium", minutes=15,
    reference=_count_parameters, cases=_count_cases,
    int_required=True,  # the text asks for an int
    mistakes=[
        Mistake("you counted the output layer as a matrix of its own; GPT-2 ties it to the token embedding "
                "(the same matrix), so it counts once", _count_untied),
        Mistake("you left out the learned position embeddings (block_size x n_embd)", _count_no_positions),
        Mistake("you left out the biases: every linear layer in GPT-2 has one", _count_no_biases),
        Mistake("you left out the LayerNorms: two per block plus a final one, each with a weight and a bias",
                _count_no_layernorm),
        Mistake("the MLP's hidden layer were n_embd wide; it is 4 x n_embd", _count_narrow_mlp),
    ],
))

# --- 2.3 how many attention scores a forward pass computes ------------------------------------------

def _attention_scores(B: int, T: int, n_layer: int, n_head: int) -> int:
    return B * n_layer * n_head * T * (T + 1) // 2

def _scores_full(B, T, n_layer, n_head):
    return B * n_layer * n_head * T * T

def _scores_no_diagonal(B, T, n_layer, n_head):
    return B * n_layer * n_head * T * (T - 1) // 2

def _scores_one_head(B, T, n_layer, n_head):
    return B * n_layer * T * (T + 1) // 2

def _scores_one_layer(B, T, n_layer, n_head):
    return B * n_head * T * (T + 1) // 2

def _count_scores_cases(rng):
    return [
        Case("GPT-2 medium (24 layers, 16 heads), one 1024-token sequence", (1, 1024, 24, 16)),
        Case("random small sizes", (rng.randint(2, 8), rng.randint(3, 100), rng.randint(2, 6), rng.randint(2, 8))),
        Case("a single token", (3, 1, 4, 2)),
        Case("one layer, one head", (rng.randint(1, 4), rng.randint(2, 50), 1, 1)),
    ]

check_attention_scores = register(Exercise(
    "attention_scores", number="2.3", chapter=2, title="How many attention scores survive the causal mask", level="easy", minutes=5,
    reference=_attention_scores, cases=_count_scores_cases,
    mistakes=[
        Mistake("there were no causal mask; token t sees only tokens 0..t, not all T", _scores_full),
        Mistake("a token could not see itself; token t has t + 1 scores (keys 0..t)", _scores_no_diagonal),
        Mistake("you counted one head; every head computes its own scores", _scores_one_head),
        Mistake("you counted one layer; every layer computes its own scores", _scores_one_layer),
    ],
))
