"""B'MOJO with the eidetic store ("bmojo") — docs/layers.md §7 (OUR design): bmojo-f.py with store=True
(innovation score pred / random / none, top-k_e per chunk of W, the last M of chunks <= c-2)."""
from ref_model import load_mixer

_f = load_mixer("bmojo-f")


def forward(W, m, lc, D, x):
    return _f.forward(W, m, lc, D, x, store=True)


def make_params(lc, D, gen):
    return _f.make_params(lc, D, gen, store=True)


def selftest():
    return []
