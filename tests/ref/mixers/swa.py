"""Sliding-window softmax attention plugin ("swa") — docs/layers.md §5: attn.py with mask
i - W < j <= i (W keys including the query itself); config field "window" (required, >= 1)."""
from ref_model import load_mixer

_attn = load_mixer("attn")


def forward(W, m, lc, D, x):
    return _attn.forward(W, m, lc, D, x, swa=True)


def forward_bidir(W, m, lc, D, x, P):
    return _attn.forward_bidir(W, m, lc, D, x, P, swa=True)


def make_params(lc, D, gen):
    """As attn.make_params; an unset window defaults to 4 for test checkpoints."""
    return _attn.make_params(lc, D, gen, swa=True)


def selftest():
    return _attn.selftest(swa=True)
