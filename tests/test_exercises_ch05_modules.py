"""Chapter 5's module exercises (5.3 MLP, 5.4 block, 5.5 initialisation, 5.6 GPT): the checker builds the
reader's class, loads known weights and compares what it computes.

ALTERNATIVES (right, written other ways) and WRONG (plausible mistakes beyond the listed ones) are run by
tests/test_exercises.py over its 50 seeds, with every other exercise's; this file checks what is special
to modules: names and shapes that do not load are failed with a message that says so, an instance or a
function where a class is asked for, a head that is not tied (equal numbers right after loading), and the
book's modules agreeing with the package's.
"""
from __future__ import annotations

import contextlib
import io
import math
from typing import Any

import pytest
from conftest import check_quietly
import torch
import torch.nn.functional as F
from torch import nn

from gpt2lib import GPT, GPTConfig
from gpt2lib.exercises import all_exercises, use, yours
from gpt2lib.exercises._core import REGISTRY
from gpt2lib.exercises.ch04_attention_module import BookCausalSelfAttention
from gpt2lib.exercises.ch05_model import _gelu
from gpt2lib.exercises import ch05_gpt as g
from gpt2lib.exercises import ch05_modules as m
from gpt2lib.model import MLP as PackageMLP
from gpt2lib.model import Block as PackageBlock

all_exercises()


pytestmark = pytest.mark.usefixtures("private_progress")  # conftest.py


_check = check_quietly  # conftest.py


# --- 5.3 the MLP ---------------------------------------------------------------------------------------

class _MLPBase(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.fc = nn.Linear(config.n_embd, 4 * config.n_embd)
        self.proj = nn.Linear(4 * config.n_embd, config.n_embd)


class MLPTorchGelu(_MLPBase):
    def __init__(self, config):
        super().__init__(config)
        self.act = nn.GELU(approximate="tanh")

    def forward(self, x):
        return self.proj(self.act(self.fc(x)))


class MLPFunctional(_MLPBase):
    def forward(self, x):
        h = F.linear(x, self.fc.weight, self.fc.bias)
        return F.gelu(h, approximate="tanh") @ self.proj.weight.T + self.proj.bias


class MLPHiddenWidth(nn.Module):
    """The hidden layer as wide as the input: the weights cannot load."""

    def __init__(self, config):
        super().__init__()
        self.fc = nn.Linear(config.n_embd, config.n_embd)
        self.proj = nn.Linear(config.n_embd, config.n_embd)

    def forward(self, x):
        return self.proj(_gelu(self.fc(x)))


class MLPNoBias(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=False)
        self.proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=False)

    def forward(self, x):
        return self.proj(_gelu(self.fc(x)))


class MLPGeluTwice(_MLPBase):
    def forward(self, x):
        return _gelu(self.proj(_gelu(self.fc(x))))


class MLPNoCube(_MLPBase):
    def forward(self, x):
        h = self.fc(x)
        return self.proj(0.5 * h * (1 + torch.tanh(math.sqrt(2 / math.pi) * h)))


class MLPOtherNames(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd)

    def forward(self, x):
        return self.c_proj(_gelu(self.c_fc(x)))


# --- 5.4 the block -------------------------------------------------------------------------------------

class OwnLayerNorm(nn.Module):
    def __init__(self, ndim, eps=1e-5):
        super().__init__()
        self.weight, self.bias, self.eps = nn.Parameter(torch.ones(ndim)), nn.Parameter(torch.zeros(ndim)), eps

    def forward(self, x):
        mean = x.mean(-1, keepdim=True)
        var = ((x - mean) ** 2).mean(-1, keepdim=True)
        return (x - mean) / torch.sqrt(var + self.eps) * self.weight + self.bias


class _BlockBase(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.ln_1 = OwnLayerNorm(config.n_embd)
        self.attn = BookCausalSelfAttention(config.n_embd, config.n_head)
        self.ln_2 = OwnLayerNorm(config.n_embd)
        self.mlp = MLPTorchGelu(config)


class BlockTwoNames(_BlockBase):
    def forward(self, x):
        h = x + self.attn(self.ln_1(x))
        return h + self.mlp(self.ln_2(h))


class BlockTorchAdd(_BlockBase):
    def forward(self, x):
        x = torch.add(x, self.attn(self.ln_1(x)))
        return torch.add(x, self.mlp(self.ln_2(x)))


class BlockNoMLP(_BlockBase):
    def forward(self, x):
        return x + self.attn(self.ln_1(x))


class BlockMLPFirst(_BlockBase):
    def forward(self, x):
        x = x + self.mlp(self.ln_2(x))
        return x + self.attn(self.ln_1(x))


class BlockNoLN2(_BlockBase):
    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(x)


class BlockFinalLN(_BlockBase):
    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return self.ln_2(x + self.mlp(self.ln_2(x)))


class BlockHalfResidual(_BlockBase):
    def forward(self, x):
        x = x + 0.5 * self.attn(self.ln_1(x))
        return x + 0.5 * self.mlp(self.ln_2(x))


class BlockPackageAttention(nn.Module):
    """gpt2lib's attention layer returns (y, weights): added to x as it is, it cannot work."""

    def __init__(self, config):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(config.n_embd), nn.LayerNorm(config.n_embd)
        from gpt2lib.attention import CausalSelfAttention
        self.attn = CausalSelfAttention(config.n_embd, config.n_head)
        self.mlp = PackageMLP(config)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


# --- 5.5 the initialisation ----------------------------------------------------------------------------

def init_by_name(model):
    n_layer = model.config.n_layer
    for name, p in model.named_parameters():
        if ".ln_" in name or name.startswith("ln_"):
            continue
        if name.endswith("bias"):
            nn.init.zeros_(p)
        elif name.endswith(("attn.w_o.weight", "mlp.proj.weight")):
            nn.init.normal_(p, std=0.02 / math.sqrt(2 * n_layer))
        else:
            nn.init.normal_(p, std=0.02)


def init_with_apply(model):
    model.apply(GPT._init_weights)
    for block in model.blocks:
        for proj in (block.attn.w_o, block.mlp.proj):
            torch.nn.init.normal_(proj.weight, std=0.02 / (2 * len(model.blocks)) ** 0.5)


def init_data_normal(model):
    for mod in model.modules():
        if isinstance(mod, (nn.Linear, nn.Embedding)):
            mod.weight.data.normal_(0.0, 0.02)
            if getattr(mod, "bias", None) is not None:
                mod.bias.data.zero_()
    for block in model.blocks:
        block.attn.w_o.weight.data.normal_(0.0, 0.02 * (2 * model.config.n_layer) ** -0.5)
        block.mlp.proj.weight.data.normal_(0.0, 0.02 * (2 * model.config.n_layer) ** -0.5)


def init_residual_first(model):
    """The residual projections drawn first, then every linear layer again: the scaling is lost."""
    for block in model.blocks:
        for proj in (block.attn.w_o, block.mlp.proj):
            nn.init.normal_(proj.weight, std=0.02 / math.sqrt(2 * len(model.blocks)))
    g._init_unscaled(model)


def init_uniform(model):
    for mod in model.modules():
        if isinstance(mod, (nn.Linear, nn.Embedding)):
            nn.init.uniform_(mod.weight, -0.02, 0.02)
        if isinstance(mod, nn.Linear) and mod.bias is not None:
            nn.init.zeros_(mod.bias)
    for block in model.blocks:
        for proj in (block.attn.w_o, block.mlp.proj):
            nn.init.uniform_(proj.weight, -0.02 / math.sqrt(2 * len(model.blocks)), 0.02 / math.sqrt(2 * len(model.blocks)))


def init_divided_by_depth(model):
    g._init_unscaled(model)
    for block in model.blocks:
        for proj in (block.attn.w_o, block.mlp.proj):
            nn.init.normal_(proj.weight, std=0.02 / (2 * len(model.blocks)))


def init_xavier(model):
    for mod in model.modules():
        if isinstance(mod, (nn.Linear, nn.Embedding)):
            nn.init.xavier_normal_(mod.weight)
        if isinstance(mod, nn.Linear) and mod.bias is not None:
            nn.init.zeros_(mod.bias)


def init_only_first_block_scaled(model):
    g._init_unscaled(model)
    for proj in (model.blocks[0].attn.w_o, model.blocks[0].mlp.proj):
        nn.init.normal_(proj.weight, std=0.02 / math.sqrt(2 * len(model.blocks)))


# --- 5.6 the whole model -------------------------------------------------------------------------------

class _GPTBase(nn.Module):
    def __init__(self, config, head_bias=False):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.blocks = nn.ModuleList(m.BookBlock(config) for _ in range(config.n_layer))
        self.ln_f = OwnLayerNorm(config.n_embd)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=head_bias)
        self.lm_head.weight = self.wte.weight

    def body(self, idx, pos):
        x = self.wte(idx) + self.wpe(pos)
        for block in self.blocks:
            x = block(x)
        return self.ln_f(x)


class GPTFunctionalHead(_GPTBase):
    def forward(self, idx, targets=None):
        logits = F.linear(self.body(idx, torch.arange(idx.shape[1])[None]), self.wte.weight)
        loss = None if targets is None else F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        return logits, loss


class GPTReshape(_GPTBase):
    def forward(self, idx, targets=None):
        B, T = idx.shape
        logits = self.lm_head(self.body(idx, torch.arange(0, T, dtype=torch.long)))
        if targets is not None:
            return logits, F.cross_entropy(logits.reshape(B * T, -1), targets.reshape(B * T))
        return logits, None


class GPTHeadBias(_GPTBase):
    def __init__(self, config):
        super().__init__(config, head_bias=True)

    def forward(self, idx, targets=None):
        logits = self.lm_head(self.body(idx, torch.arange(idx.size(1))))
        return logits, None if targets is None else F.cross_entropy(logits.flatten(0, 1), targets.flatten())


class GPTPositionsReversed(_GPTBase):
    def forward(self, idx, targets=None):
        logits = self.lm_head(self.body(idx, torch.arange(idx.size(1)).flip(0)))
        return logits, None if targets is None else F.cross_entropy(logits.flatten(0, 1), targets.flatten())


class GPTLogitsOnly(_GPTBase):
    def forward(self, idx, targets=None):
        return self.lm_head(self.body(idx, torch.arange(idx.size(1))))


class GPTProbabilities(_GPTBase):
    def forward(self, idx, targets=None):
        probs = torch.softmax(self.lm_head(self.body(idx, torch.arange(idx.size(1)))), dim=-1)
        return probs, None if targets is None else F.nll_loss(probs.log().flatten(0, 1), targets.flatten())


class GPTLossPerRow(_GPTBase):
    def forward(self, idx, targets=None):
        logits = self.lm_head(self.body(idx, torch.arange(idx.size(1))))
        if targets is None:
            return logits, None
        per_token = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
        return logits, per_token.sum(dim=1).mean()


class GPTLossAlways(_GPTBase):
    def forward(self, idx, targets=None):
        logits = self.lm_head(self.body(idx, torch.arange(idx.size(1))))
        if targets is None:
            targets = torch.cat([idx[:, 1:], idx[:, :1]], dim=1)
        return logits, F.cross_entropy(logits.flatten(0, 1), targets.flatten())


class GPTEmbeddingsScaled(_GPTBase):
    """sqrt(n_embd) times the token embedding, as in the original Transformer; GPT-2 does not."""

    def forward(self, idx, targets=None):
        x = self.wte(idx) * math.sqrt(self.config.n_embd) + self.wpe(torch.arange(idx.size(1)))
        for block in self.blocks:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        return logits, None if targets is None else F.cross_entropy(logits.flatten(0, 1), targets.flatten())


ALTERNATIVES = {
    "mlp_module": [PackageMLP, MLPTorchGelu, MLPFunctional],
    "block_module": [BlockTwoNames, BlockTorchAdd],
    "gpt_init": [g._run_init(f) for f in (init_by_name, init_with_apply, init_data_normal)],
    "gpt_model": [GPT, GPTFunctionalHead, GPTReshape],
}
WRONG = {
    "mlp_module": [MLPHiddenWidth, MLPNoBias, MLPGeluTwice, MLPNoCube, MLPOtherNames],
    "block_module": [BlockNoMLP, BlockMLPFirst, BlockNoLN2, BlockFinalLN, BlockHalfResidual, BlockPackageAttention],
    "gpt_init": [g._run_init(f) for f in (init_residual_first, init_uniform, init_divided_by_depth, init_xavier,
                                          init_only_first_block_scaled)],
    "gpt_model": [GPTHeadBias, GPTPositionsReversed, GPTLogitsOnly, GPTProbabilities, GPTLossPerRow,
                  GPTLossAlways, GPTEmbeddingsScaled],
}


# --- what is special to modules --------------------------------------------------------------------------

@pytest.mark.parametrize("name, cls, words", [
    ("mlp_module", MLPHiddenWidth, ["wrong shapes", "fc.weight is (16, 16), expected (64, 16)"]),
    ("mlp_module", MLPNoBias, ["do not have the book's names", "missing: ['fc.bias', 'proj.bias']"]),
    ("mlp_module", MLPOtherNames, ["not expected: ['c_fc.weight'"]),
    ("gpt_model", GPTHeadBias, ["not expected: ['lm_head.bias']"]),
    ("block_module", BlockPackageAttention, ["returns a pair (y, weights): take its [0]"]),
])
def test_weights_that_cannot_load_are_named(name, cls, words):
    ok, out = _check(name, cls)
    assert not ok and "✗" in out, out
    for w in words:
        assert w in out, out


@pytest.mark.parametrize("name", ["mlp_module", "block_module", "gpt_model"])
def test_an_instance_or_a_function_is_told_to_pass_the_class(name):
    exercise = REGISTRY[name]
    instance = exercise.adapt(m.BookBlock(GPTConfig(n_layer=1, n_head=1, n_embd=8, vocab_size=8, block_size=8)))
    with pytest.raises(TypeError, match="pass the class itself"):
        instance()

    def my_function(x):
        return x

    my_function.__module__ = "__main__"
    with pytest.raises(TypeError, match="asks for a class"):
        exercise.adapt(my_function)()


def test_the_init_exercise_asks_for_a_function():
    with pytest.raises(TypeError, match="asks for a function"):
        REGISTRY["gpt_init"].adapt(GPT)()


@pytest.mark.parametrize("name", ["mlp_module", "block_module", "gpt_model"])
def test_a_class_that_raises_is_reported(name):
    class Broken(nn.Module):
        def __init__(self, config):
            super().__init__()
            raise ValueError("half written")

    ok, out = _check(name, Broken)
    assert not ok and "raised ValueError: half written" in out, out

    class Placeholder(nn.Module):
        def __init__(self, config):
            super().__init__()
            raise NotImplementedError  # your code here

    ok, out = _check(name, Placeholder)
    assert not ok and "not done yet" in out, out


def test_an_untied_head_is_caught_only_by_the_edit_to_wte():
    # right after loading, the untied head holds wte's numbers: logits and loss match the reference on every
    # case, so it is the edit to wte that exposes it
    exercise = REGISTRY["gpt_model"]
    untied = exercise.mistakes[0].fn
    for case in exercise.draw_cases(0):
        want, got = exercise.reference(*case.args), untied(*case.args)
        torch.testing.assert_close(got["logits"], want["logits"])
        key = "logits after an edit to wte (is lm_head tied to it?)"
        assert not torch.allclose(got[key], want[key], atol=1e-3)
    ok, out = _check("gpt_model", g._GPTUntied)
    assert not ok and "self.lm_head.weight = self.wte.weight" in out, out


def test_the_gpt_cases_cover_one_token_a_full_context_no_targets_and_several_layers():
    cases = REGISTRY["gpt_model"].draw_cases(0)
    shapes = [(c.args[0], c.args[2].shape, c.args[3]) for c in cases]
    assert any(T == 1 for _, (B, T), _ in shapes)
    assert any(T == cfg.block_size for cfg, (B, T), _ in shapes)
    assert any(y is None for *_, y in shapes) and any(y is not None for *_, y in shapes)
    assert any(cfg.n_layer >= 2 and B >= 2 for cfg, (B, T), _ in shapes)


def test_the_init_statistics_are_far_inside_the_tolerance():
    # the checker allows 10% of the std for the mean and for the std; the sampling error of n draws is
    # std / sqrt(n) for the mean and std / sqrt(2n) for the std, so every drawn tensor must be large enough
    # for 10% to be >= 6 of those errors, and the answer key's numbers must sit inside 4.5 of them
    exercise = REGISTRY["gpt_init"]
    for seed in range(3):
        for case in exercise.draw_cases(seed):
            config, state = case.args
            stats = exercise.reference(*case.args)
            for name, (mean, std) in stats.items():
                if name.endswith(("attn.w_o.weight", "mlp.proj.weight")):
                    exact = 0.02 / math.sqrt(2 * config.n_layer)
                elif "ln_" in name or name.endswith("bias"):
                    exact = 0.0
                else:
                    exact = 0.02
                centre = 1.0 if "ln_" in name and name.endswith("weight") else 0.0
                if exact == 0.0:
                    assert mean == centre and std == 0.0, name
                    continue
                n = state[name].numel()
                assert 0.1 * exact >= 6 * exact / math.sqrt(n), (name, n)
                assert abs(std - exact) <= 4.5 * exact / math.sqrt(2 * n), (name, std, exact)
                assert abs(mean) <= 4.5 * exact / math.sqrt(n), (name, mean)


def test_the_book_modules_agree_with_the_package():
    cfg = GPTConfig(vocab_size=50, block_size=16, n_layer=2, n_head=4, n_embd=32)
    torch.manual_seed(0)
    package, book = GPT(cfg).eval(), m.BookGPT(cfg).eval()
    torch.manual_seed(0)
    again = m.BookGPT(cfg)
    # the same seed gives the package's weights: the book's init draws in the package's order
    assert all(torch.equal(a, b) for a, b in zip(package.state_dict().values(), again.state_dict().values()))
    book.load_state_dict(package.state_dict())
    idx, y = torch.randint(0, 50, (2, 9)), torch.randint(0, 50, (2, 9))
    with torch.no_grad():
        (a, la), (b, lb) = package(idx, y), book(idx, y)
        torch.testing.assert_close(a, b)
        torch.testing.assert_close(la, lb)
        block = PackageBlock(cfg).eval()
        mine = m.BookBlock(cfg).eval()
        mine.load_state_dict(block.state_dict())
        x = torch.randn(2, 9, 32)
        torch.testing.assert_close(mine(x), block(x)[0])
    assert book.lm_head.weight is book.wte.weight


def test_what_passed_is_what_use_returns():
    ok = REGISTRY["mlp_module"].check(MLPTorchGelu, seed=0)
    assert ok
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        chosen = use("mlp_module", book=PackageMLP)
    assert chosen is MLPTorchGelu and "using your MLPTorchGelu" in buf.getvalue()


def test_the_block_cases_tell_the_two_layernorms_apart():
    cfg, state, x = REGISTRY["block_module"].draw_cases(0)[0].args
    assert not torch.equal(state["ln_1.weight"], state["ln_2.weight"])
    assert not torch.equal(state["ln_1.bias"], state["ln_2.bias"])


# --- the reader's path: what passes here is what later chapters import --------------------------------------

_CELLS = [
    """import math
import torch
import torch.nn.functional as F
from torch import nn
from gpt2lib.exercises import check_block_module, check_gelu, check_gpt_init, check_gpt_model, check_mlp_module, use
from gpt2lib.exercises.ch04_attention_module import BookCausalSelfAttention
CausalSelfAttention = BookCausalSelfAttention   # the chapter asks use("attention_module", ...) for it
""",
    """def my_gelu(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))

assert check_gelu(my_gelu)
gelu = use("gelu", book=None)
""",
    """class LayerNorm(nn.Module):
    def __init__(self, ndim, eps=1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))
        self.bias = nn.Parameter(torch.zeros(ndim))
        self.eps = eps

    def forward(self, x):
        mean = x.mean(dim=-1, keepdim=True)
        var = x.var(dim=-1, keepdim=True, unbiased=False)
        return (x - mean) / torch.sqrt(var + self.eps) * self.weight + self.bias
""",
    """class MyMLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.fc = nn.Linear(config.n_embd, 4 * config.n_embd)
        self.proj = nn.Linear(4 * config.n_embd, config.n_embd)

    def forward(self, x):
        return self.proj(gelu(self.fc(x)))

assert check_mlp_module(MyMLP)
MLP = use("mlp_module", book=None)
""",
    """class MyBlock(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.ln_1 = LayerNorm(config.n_embd)
        self.attn = CausalSelfAttention(config.n_embd, config.n_head)
        self.ln_2 = LayerNorm(config.n_embd)
        self.mlp = MLP(config)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))

assert check_block_module(MyBlock)
Block = use("block_module", book=None)
""",
    """def my_init_weights(model):
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)
    for block in model.blocks:
        for proj in (block.attn.w_o, block.mlp.proj):
            nn.init.normal_(proj.weight, mean=0.0, std=0.02 / math.sqrt(2 * len(model.blocks)))

assert check_gpt_init(my_init_weights)
init_weights = use("gpt_init", book=None)
""",
    """class MyGPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = LayerNorm(config.n_embd)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight
        init_weights(self)

    def forward(self, idx, targets=None):
        x = self.wte(idx) + self.wpe(torch.arange(idx.size(1), device=idx.device))
        for block in self.blocks:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        if targets is None:
            return logits, None
        return logits, F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))

assert check_gpt_model(MyGPT)
""",
]


def test_the_readers_gpt_is_saved_and_is_gpt2lib_s_model():
    # the chapter's cells, run as a notebook runs them (in __main__, their source in linecache): each class
    # passes, is saved into my_gpt2lib.py, and a fresh runtime's use() gets a GPT equal to gpt2lib.GPT
    import linecache

    namespace: dict[str, Any] = {"__name__": "__main__"}
    for n, source in enumerate(_CELLS):
        filename = f"<notebook cell {n}>"
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(source, filename, "exec"), namespace)
    yours.forget_runtime()  # a later chapter: a fresh runtime, only the saved module
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        Saved = use("gpt_model", book=GPT)
    assert "from my_gpt2lib.py" in buf.getvalue(), buf.getvalue()
    assert Saved.__module__ == "my_gpt2lib" and Saved is not namespace["MyGPT"]
    cfg = GPTConfig(vocab_size=60, block_size=16, n_layer=2, n_head=2, n_embd=16)
    torch.manual_seed(0)
    mine = Saved(cfg)
    torch.manual_seed(0)
    package = GPT(cfg)
    assert list(mine.state_dict()) == list(package.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(mine.state_dict().values(), package.state_dict().values()))
    idx = torch.randint(0, 60, (2, 10))
    with torch.no_grad():
        (a, la), (b, lb) = mine.eval()(idx, idx), package.eval()(idx, idx)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(la, lb)
