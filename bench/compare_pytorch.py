#!/usr/bin/python3
"""Training-step speed of eidetic against PyTorch on the same models (GitHub issue #5).

For every (mixer, config) this builds the model of eidetic's bench in PyTorch (fp32, CPU), in the
fastest honest form we have for that mixer, times one training step (forward + backward + AdamW),
runs eidetic's own measurement of the same config (`eidetic bench train ...`) and prints the ratio.

    /usr/bin/python3 bench/compare_pytorch.py [--eidetic PATH] [--mixers a,b] [--configs A128,A256,B512]
        [--threads 2] [--min-time S] [--out DIR] [--quick] [--window W] [--form MIXER=FORM ...]
        [--precision fp32|bf16]
    /usr/bin/python3 bench/compare_pytorch.py --check [--mixers a,b]

--precision bf16: PyTorch's forward (and so the backward of its bf16 ops) runs under
torch.autocast("cpu", dtype=torch.bfloat16), what PyTorch users get for mixed precision; eidetic runs
`bench train --precision bf16` (bf16 matrix products, fp32 elsewhere: docs/performance.md "Mixed
precision"). Master weights and AdamW stay fp32 on both sides. On a CPU without native bf16 eidetic
falls back to fp32 unless EIDETIC_BF16_EMULATE=1 is set (then both sides run emulated bf16: a check
of the comparison, not a speed anyone should use).

Run it with Debian's interpreter (python3-torch 1.13, linked to OpenBLAS 0.3.21).

Configurations (the same as eidetic's bench):
  A128, A256  d_model 128 / 256, 2 layers of one mixer, no MLP, vocab 8192, tied embedding, seq 256,
              batch 16; cross-entropy only at the MQAR query positions (16 per sequence; the LM head
              runs only at those rows, as eidetic does)
  B512        d_model 512, 4 layers of the mixer each followed by a SwiGLU MLP (d_ff 1376), seq 1024,
              batch 4, LM loss at every position
  B512v4096, B512v50280  B512 at vocabulary 4096 / 50 280 (language modelling at a GPT-NeoX-sized
              vocabulary: every position labelled, so the LM head dominates at 50 280); any config
              takes the suffix v<V>
  QA64, QB64  (--quick) the same two shapes at d_model 64, seq 64 / 128, batch 4 / 2: smoke sizes
Step = zero_grad + forward + backward + torch.optim.AdamW.step (foreach or not, whichever is faster),
fp32, torch.set_num_threads(--threads), denormals flushed. Mixer sizes are the engine defaults as
resolved by tests/ref/mixers/*.py (`sizes()`); swa uses --window (default 64).

PyTorch forms (chosen per (mixer, config) by timing the candidates on one layer of that shape,
forward + backward; --form MIXER=FORM forces one):
  longhorn, mamba  scan      sequential scan over time vectorised over (batch, channel, state),
                             autograd through the loop (as mamba's selective_scan_ref)
                   scan-fn   the same loop in a torch.autograd.Function with a hand-written adjoint loop
                   (a chunked log-space form, S_t = e^{L_t}(S_in + cumsum_s e^{-L_s} b_s) per chunk of 16,
                   was measured during development on the scan alone, fwd + bwd at T=256, B=4, I=256,
                   N=16, 2 cores: 240 ms against 42 ms (scan) and 28 ms (scan-fn); it also overflows
                   once a chunk's log-decay passes -88, so it is not offered)
  mamba2           ssdQ      chunked SSD (ssd_minimal) with chunk length Q in {32, 64, 128}
  gla              chunkC/c  chunked GLA: inter-chunk state (GEMMs), intra-chunk sub-chunk blocks with
                             a reference point (GEMMs) and explicit per-key-dim diagonal blocks (docs/layers.md
                             §4.3), C/c in {64/16, 32/16, 16/16}
  attn             sdpa      torch scaled_dot_product_attention, causal (private in torch 1.13)
                   matmul    explicit masked softmax
  swa              blocked   query blocks of W rows against their own and the previous key block
                   sdpa-band SDPA with a banded additive mask over the full T x T scores
--check compares every form with tests/ref (one layer, same weights, forward in fp32 vs the float64
reference, rel err < 1e-4; gradients of every parameter and the input in float64, rel err < 1e-8)
and whole models (logits and labelled-row loss) with ref_model.forward; it prints
"compare_pytorch --check: N passed, M failed" and exits 1 on any failure.
"""
import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
REF_DIR = os.path.join(ROOT, "tests", "ref")

MIXERS = ["longhorn", "mamba", "mamba2", "gla", "attn", "swa"]
V_DEFAULT = 8192
KV_PAIRS = 16


def d_ff_default(D):
    """docs/layers.md §0.3: 8·D/3 rounded up to a multiple of 32."""
    return ((8 * D + 2) // 3 + 31) // 32 * 32


def config(name):
    """name -> dict of sizes; A<D>, B<D> (and the --quick QA64 / QB64)."""
    m = re.fullmatch(r"(Q?)([AB])(\d+)(?:v(\d+))?", name)
    if not m:
        raise SystemExit(f"compare_pytorch: unknown config {name!r} (A128, A256, B512, QA64, QB64, A<D>, B<D>; "
                         "a suffix v<V> sets the vocabulary, e.g. B512v50280)")
    quick, fam, D = m.group(1) == "Q", m.group(2), int(m.group(3))
    if fam == "A":
        c = dict(n_layer=2, d_ff=0, seq_len=64 if quick else 256, batch=4 if quick else 16, loss="mqar")
    else:
        c = dict(n_layer=2 if quick else 4, d_ff=d_ff_default(D), seq_len=128 if quick else 1024,
                 batch=2 if quick else 4, loss="lm")
    V = int(m.group(4)) if m.group(4) else V_DEFAULT
    c.update(name=name, family=fam, d_model=D, vocab=V, labels=KV_PAIRS if c["loss"] == "mqar" else 0)
    return c


def target(mixer, cfg):
    return 5.0 if (mixer in ("longhorn", "mamba") and cfg["family"] == "A") else 2.0


# ------------------------------------------------------------------------------------------------
# environment: OpenBLAS core type and threads must be set before torch (and its OpenBLAS) loads
# ------------------------------------------------------------------------------------------------
_CORE_RANK = {"prescott": 0, "core2": 1, "penryn": 1, "dunnington": 1, "nehalem": 2, "atom": 0,
              "sandybridge": 3, "bulldozer": 3, "piledriver": 3, "steamroller": 3, "excavator": 3,
              "haswell": 4, "zen": 4, "skylakex": 5, "cooperlake": 6, "sapphirerapids": 7}


def setup_env(threads):
    notes = []
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((l.split(":", 1)[1].split() for l in f if l.startswith("flags")), [])
    except OSError:
        flags = []
    want = "SkylakeX" if "avx512f" in flags else ("Haswell" if "avx2" in flags else None)
    cur = os.environ.get("OPENBLAS_CORETYPE")
    if want and (not cur or _CORE_RANK.get(cur.lower(), 99) < _CORE_RANK[want.lower()]):
        os.environ["OPENBLAS_CORETYPE"] = want
        notes.append(f"OPENBLAS_CORETYPE={want} (was {cur or 'unset'}; the CPU has "
                     f"{'avx512f' if want == 'SkylakeX' else 'avx2'})")
    else:
        notes.append(f"OPENBLAS_CORETYPE={cur or 'unset'} (kept)")
    for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        os.environ[v] = str(threads)
    return notes


def openblas_core():
    """The core type OpenBLAS runs with, asked from the library torch loaded."""
    import ctypes
    try:
        with open("/proc/self/maps") as f:
            libs = sorted({l.split()[-1] for l in f if "openblas" in l.split()[-1]})
        for p in libs:
            lib = ctypes.CDLL(p)
            if hasattr(lib, "openblas_get_corename"):
                lib.openblas_get_corename.restype = ctypes.c_char_p
                cfg = ""
                if hasattr(lib, "openblas_get_config"):
                    lib.openblas_get_config.restype = ctypes.c_char_p
                    cfg = lib.openblas_get_config().decode()
                return lib.openblas_get_corename().decode(), cfg, p
    except OSError:
        pass
    return "unknown", "", ""


# Threading of Debian's torch: its OpenMP pool (libgomp) and OpenBLAS's own pthread pool both spin on
# the same cores; on a busy 2-core machine that made steps 5-20x slower and erratic. The candidates
# below are timed on a small training step in child processes and the fastest is used
# (--blas-env forces one); all use Debian's packages.
OPENBLAS_OPENMP_DIR = "/usr/lib/x86_64-linux-gnu/openblas-openmp"
BLAS_ENVS = {
    "pthread-passive": ("OpenBLAS pthread build, OMP_WAIT_POLICY=PASSIVE", {"OMP_WAIT_POLICY": "PASSIVE"}),
    "pthread": ("OpenBLAS pthread build (Debian default), libgomp default wait policy", {}),
    "openmp": ("OpenBLAS OpenMP build (LD_LIBRARY_PATH=" + OPENBLAS_OPENMP_DIR + ", shares torch's pool)",
               {"LD_LIBRARY_PATH": OPENBLAS_OPENMP_DIR}),
    "openmp-passive": ("OpenBLAS OpenMP build, OMP_WAIT_POLICY=PASSIVE",
                       {"LD_LIBRARY_PATH": OPENBLAS_OPENMP_DIR, "OMP_WAIT_POLICY": "PASSIVE"}),
}
ENV_MARK = "COMPARE_PYTORCH_BLAS_ENV"           # set in the re-executed process (JSON)
# glibc malloc returns every freed block above 32 MB (mmap) to the kernel, so each step page-faults its
# large activations in again (~0.3 s of system time per Longhorn layer at A128); keeping freed memory
# removes that (--malloc default turns it off)
MALLOC_KEEP = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(1 << 40)}
ENV_KEYS = ("OMP_WAIT_POLICY", "LD_LIBRARY_PATH", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_CORETYPE") + \
    tuple(MALLOC_KEEP)


def blas_env(name, malloc):
    env = dict(os.environ)
    env.pop("OMP_WAIT_POLICY", None)
    if malloc == "keep":
        env.update(MALLOC_KEEP)
    for k, v in BLAS_ENVS[name][1].items():
        env[k] = v + (":" + env["LD_LIBRARY_PATH"] if k == "LD_LIBRARY_PATH" and env.get("LD_LIBRARY_PATH") else "")
    return env


def calibrate(a):
    """Time a small training step under every BLAS_ENVS candidate (child processes); -> (best, scores)."""
    names = [n for n in BLAS_ENVS if "openmp" not in n or os.path.isdir(OPENBLAS_OPENMP_DIR)]
    scores = {}
    for n in names:
        print(f"calibrating threads: {n} ...", file=sys.stderr, flush=True)
        ok = [v for v in scores.values() if v]
        limit = ["--calib-limit-ms", str(3 * min(ok))] if ok else []   # give up on a hopeless variant
        try:
            p = subprocess.run([sys.executable, os.path.abspath(__file__), "--calibrate-worker",
                                "--threads", str(a.threads)] + (["--quick"] if a.quick else []) + limit,
                               env=blas_env(n, a.malloc), capture_output=True, text=True, timeout=300)
            m = re.search(r"^SCORE ([0-9.]+)$", p.stdout, re.M)
            scores[n] = float(m.group(1)) if m else None
        except (OSError, subprocess.TimeoutExpired):
            scores[n] = None
    ok = {n: v for n, v in scores.items() if v}
    return (min(ok, key=ok.get) if ok else "pthread"), scores


def calibrate_worker(torch, g, a):
    """SCORE = sum over a few mixers of the median step time (ms) of a small model; a step slower
    than --calib-limit-ms ends the run with SCORE = that step x the number of mixers."""
    a.window, a.form_map = 64, {}
    b = Bench(torch, g, a)
    cfg = config("QA64") if a.quick else dict(config("A128"), batch=4, seq_len=128)
    work = (("longhorn", "scan"), ("attn", "matmul")) if a.quick else \
        (("longhorn", "scan"), ("gla", "chunk32/16"), ("attn", "matmul"))
    total = 0.0
    for mixer, form in work:
        model = b.build(mixer, cfg, form)
        opt = b.optimizer(model, False)
        tokens, rows, labels = b.batch(cfg)
        ts, t_end = [], None
        for i in range(200):
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            model(tokens, rows, labels).backward()
            opt.step()
            t1 = time.perf_counter()
            if a.calib_limit_ms and (t1 - t0) * 1e3 > a.calib_limit_ms:
                print(f"SCORE {(t1 - t0) * 1e3 * len(work):.3f}")
                return 0
            if i:
                ts.append(t1 - t0)
            t_end = t_end or t1 + (0.3 if a.quick else 1.0)
            if t1 > t_end and len(ts) >= (2 if a.quick else 3):
                break
        total += statistics.median(ts) * 1e3
    print(f"SCORE {total:.3f}")
    return 0


# ================================================================================================
# everything below needs torch; main() imports it after setup_env()
# ================================================================================================
def define(torch):
    """Build the model classes with the imported torch (kept in a closure so that the environment
    is set up before `import torch`)."""
    nn, F = torch.nn, torch.nn.functional
    g = {}

    sys.path.insert(0, REF_DIR)
    import ref_model                                                    # noqa: E402
    g["ref_model"] = ref_model

    class RMSNorm(nn.Module):
        def __init__(self, d, eps=1e-5):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(d))
            self.eps = eps

        def forward(self, x):
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight

    def dwconv(conv, x):
        """Causal depthwise conv (§0.5) of x [B,T,C] with an nn.Conv1d(groups=C, padding=K-1)."""
        T = x.shape[1]
        return conv(x.transpose(1, 2))[..., :T].transpose(1, 2)

    # ---------------------------------------------------------------- Longhorn / Mamba-1 scans
    def scan_autograd(a, b):
        """h_t = a_t ⊙ h_{t-1} + b_t over dim 0 (time-major [T, ...]); autograd through the loop."""
        A, Bs = a.unbind(0), b.unbind(0)
        h = Bs[0]
        hs = [h]
        for t in range(1, len(A)):
            h = torch.addcmul(Bs[t], A[t], h)
            hs.append(h)
        return torch.stack(hs)

    class ScanFn(torch.autograd.Function):
        """The same loop without autograd; backward runs the adjoint G_t = dH_t + a_{t+1} ⊙ G_{t+1},
        da_t = G_t ⊙ h_{t-1}, db_t = G_t."""
        @staticmethod
        def forward(ctx, a, b):
            H = torch.empty_like(b)
            H[0].copy_(b[0])
            for t in range(1, a.shape[0]):
                torch.addcmul(b[t], a[t], H[t - 1], out=H[t])
            ctx.save_for_backward(a, H)
            return H

        @staticmethod
        def backward(ctx, dH):
            a, H = ctx.saved_tensors
            T = a.shape[0]
            dH = dH.contiguous()
            G = torch.empty_like(dH)
            G[T - 1].copy_(dH[T - 1])
            for t in range(T - 2, -1, -1):
                torch.addcmul(dH[t], a[t + 1], G[t + 1], out=G[t])
            da = torch.zeros_like(a)
            torch.mul(G[1:], H[:-1], out=da[1:])
            return da, G

    class Selective(nn.Module):
        """Longhorn (§2.2, diagonal form) and Mamba-1 (§1.2); HF leaf names."""
        def __init__(self, kind, D, lc, form="scan"):
            super().__init__()
            s = ref_model.load_mixer(kind).sizes(lc, D)
            I, N, K, R = s["I"], s["N"], s["K"], s["R"]
            self.kind, self.form, self.I, self.N, self.R = kind, form, I, N, R
            self.in_proj = nn.Linear(D, 2 * I, bias=False)
            self.conv1d = nn.Conv1d(I, I, K, groups=I, padding=K - 1, bias=True)
            self.x_proj = nn.Linear(I, R + 2 * N, bias=False)
            self.dt_proj = nn.Linear(R, I, bias=True)
            if kind == "mamba":
                self.A_log = nn.Parameter(torch.log(torch.arange(1, N + 1, dtype=torch.float32)).repeat(I, 1))
            self.D = nn.Parameter(torch.ones(I))
            self.out_proj = nn.Linear(I, D, bias=False)

        def forward(self, x):
            I, N, R = self.I, self.N, self.R
            xi, z = self.in_proj(x).split([I, I], -1)
            u = F.silu(dwconv(self.conv1d, xi))
            r, k, q = self.x_proj(u).split([R, N, N], -1)
            tm = lambda t: t.transpose(0, 1).contiguous()             # [B,T,.] -> time-major [T,B,.]
            uT, kT, qT = tm(u), tm(k), tm(q)
            if self.kind == "longhorn":
                beta = tm(torch.sigmoid(self.dt_proj(r)))
                k2 = kT * kT
                eps = beta / (1 + beta * k2.sum(-1, keepdim=True))
                a = 1 - eps[..., None] * k2[:, :, None, :]             # [T,B,I,N]
                b = (eps * uT)[..., None] * kT[:, :, None, :]
            else:
                delta = tm(F.softplus(self.dt_proj(r)))
                a = torch.exp(delta[..., None] * -torch.exp(self.A_log))
                b = (delta * uT)[..., None] * kT[:, :, None, :]        # k holds B for Mamba
            if a.dtype != b.dtype:   # under autocast Mamba's a is fp32 (A_log), b bf16: the scan's out= needs one dtype
                dt = torch.promote_types(a.dtype, b.dtype)
                a, b = a.to(dt), b.to(dt)
            H = ScanFn.apply(a, b) if self.form == "scan-fn" else scan_autograd(a, b)
            y = (H @ qT[..., None]).squeeze(-1) + self.D * uT         # C (Mamba) / q (Longhorn)
            return self.out_proj(y.transpose(0, 1) * F.silu(z))

    # ---------------------------------------------------------------- Mamba-2 (chunked SSD)
    def ssd_chunked(X, Bm, Cm, delta, a, Q):
        """§3.3. X [B,T,H,P]; Bm, Cm [B,T,G,N]; delta [B,T,H]; a [H] -> Y [B,T,H,P] (no D skip)."""
        Bb, T, H, P = X.shape
        G, N = Bm.shape[2], Bm.shape[3]
        pad = (-T) % Q
        if pad:                                                      # Δ = 0, x = 0: exact
            X, Bm, Cm, delta = (F.pad(t, (0, 0) * (t.dim() - 2) + (0, pad)) for t in (X, Bm, Cm, delta))
        n = (T + pad) // Q
        Xd = (X * delta[..., None]).reshape(Bb, n, Q, H, P).permute(0, 1, 3, 2, 4)   # [B,n,H,Q,P]
        Gc = (delta * a).reshape(Bb, n, Q, H).permute(0, 1, 3, 2).cumsum(-1)      # [B,n,H,Q]
        if G == 1:
            Bc, Cc = Bm.reshape(Bb, n, 1, Q, N), Cm.reshape(Bb, n, 1, Q, N)
        else:                                                        # head h uses group h*G//H
            idx = torch.arange(H) * G // H
            Bc = Bm[:, :, idx].reshape(Bb, n, Q, H, N).transpose(2, 3)
            Cc = Cm[:, :, idx].reshape(Bb, n, Q, H, N).transpose(2, 3)
        mask = torch.ones(Q, Q, dtype=torch.bool).tril()
        Lmat = torch.exp((Gc[..., :, None] - Gc[..., None, :]).masked_fill(~mask, float("-inf")))
        Y = ((Cc @ Bc.transpose(-1, -2)) * Lmat) @ Xd                                # diagonal blocks
        w = torch.exp(Gc[..., -1:] - Gc)                                             # [B,n,H,Q]
        Sloc = (Xd * w[..., None]).transpose(-1, -2) @ Bc                            # [B,n,H,P,N]
        dec = torch.exp(Gc[..., -1])                                                 # [B,n,H]
        s = torch.zeros_like(Sloc[:, 0])
        Sin = []
        for j in range(n):
            Sin.append(s)
            s = dec[:, j, :, None, None] * s + Sloc[:, j]
        Sin = torch.stack(Sin, 1)                                                    # [B,n,H,P,N]
        Y = Y + torch.exp(Gc)[..., None] * (Cc @ Sin.transpose(-1, -2))              # state entering
        return Y.permute(0, 1, 3, 2, 4).reshape(Bb, n * Q, H, P)[:, :T]

    class Mamba2(nn.Module):
        def __init__(self, D, lc, form="ssd64"):
            super().__init__()
            s = ref_model.load_mixer("mamba2").sizes(lc, D)
            I, H, G, N, K = s["I"], s["H"], s["G"], s["N"], s["K"]
            self.s, self.Q = s, int(form[3:])
            CD = I + 2 * G * N
            self.in_proj = nn.Linear(D, 2 * I + 2 * G * N + H, bias=False)
            self.conv1d = nn.Conv1d(CD, CD, K, groups=CD, padding=K - 1, bias=True)
            self.dt_bias = nn.Parameter(torch.zeros(H))
            self.A_log = nn.Parameter(torch.zeros(H))
            self.D = nn.Parameter(torch.ones(H))
            self.norm = nn.Module()
            self.norm.weight = nn.Parameter(torch.ones(I))
            self.out_proj = nn.Linear(I, D, bias=False)

        def forward(self, x):
            s = self.s
            I, P, H, G, N = s["I"], s["P"], s["H"], s["G"], s["N"]
            Bb, T, _ = x.shape
            z, xBC, dt = self.in_proj(x).split([I, I + 2 * G * N, H], -1)
            xs, Bm, Cm = F.silu(dwconv(self.conv1d, xBC)).split([I, G * N, G * N], -1)
            delta = F.softplus(dt + self.dt_bias)
            X = xs.reshape(Bb, T, H, P)
            Y = ssd_chunked(X, Bm.reshape(Bb, T, G, N), Cm.reshape(Bb, T, G, N), delta,
                            -torch.exp(self.A_log), self.Q) + self.D[:, None] * X
            y = Y.reshape(Bb, T, I) * F.silu(z)                      # gate, then grouped RMSNorm
            yg = y.reshape(Bb, T, G, I // G)
            y = (yg * torch.rsqrt(yg.pow(2).mean(-1, keepdim=True) + 1e-5)).reshape(Bb, T, I)
            return self.out_proj(y * self.norm.weight)

    # ---------------------------------------------------------------- GLA (chunked)
    def gla_chunked(q, k, v, gk, C, c):
        """§4.3. q (scaled), k, gk [B,H,T,dk]; v [B,H,T,dv] -> o [B,H,T,dv]."""
        Bb, H, T, dk = q.shape
        dv = v.shape[-1]
        pad = (-T) % C
        if pad:                                                      # k = 0, g = 0: exact
            q, k, v, gk = (F.pad(t, (0, 0, 0, pad)) for t in (q, k, v, gk))
        n = (T + pad) // C
        q, k, gk = (t.reshape(Bb, H, n, C, dk) for t in (q, k, gk))
        v = v.reshape(Bb, H, n, C, dv)
        G = gk.cumsum(-2)
        Glast = G[..., -1:, :]
        Sloc = (k * torch.exp(Glast - G)).transpose(-1, -2) @ v     # [B,H,n,dk,dv]
        dec = torch.exp(Glast)[..., 0, :, None]                      # [B,H,n,dk,1]
        s = torch.zeros_like(Sloc[:, :, 0])
        Sin = []
        for j in range(n):
            Sin.append(s)
            s = dec[:, :, j] * s + Sloc[:, :, j]
        O = (q * torch.exp(G)) @ torch.stack(Sin, 2)                 # inter-chunk part
        mask = torch.ones(c, c, dtype=torch.bool).tril()[:, :, None]
        parts = []
        for a in range(C // c):
            ra = slice(a * c, (a + 1) * c)
            Ga, qa = G[..., ra, :], q[..., ra, :]
            diff = (Ga[..., :, None, :] - Ga[..., None, :, :]).masked_fill(~mask, float("-inf"))
            Ad = (qa[..., :, None, :] * k[..., None, ra, :] * torch.exp(diff)).sum(-1)   # [.., c, c]
            Oa = Ad @ v[..., ra, :]
            if a:
                ref = Ga[..., :1, :]
                Aoff = (qa * torch.exp(Ga - ref)) @ (k[..., :a * c, :] * torch.exp(ref - G[..., :a * c, :])).transpose(-1, -2)
                Oa = Oa + Aoff @ v[..., :a * c, :]
            parts.append(Oa)
        O = O + torch.cat(parts, -2)
        return O.reshape(Bb, H, n * C, dv)[:, :, :T]

    class GLA(nn.Module):
        def __init__(self, D, lc, form="chunk64/16"):
            super().__init__()
            s = ref_model.load_mixer("gla").sizes(lc, D)
            if s["K"]:
                raise SystemExit("compare_pytorch: gla short convs are not implemented here")
            self.s = s
            self.C, self.c = (int(v) for v in form[5:].split("/"))
            Dk, Dv, r = s["Dk"], s["Dv"], s["r"]
            self.q_proj = nn.Linear(D, Dk, bias=False)
            self.k_proj = nn.Linear(D, Dk, bias=False)
            self.v_proj = nn.Linear(D, Dv, bias=False)
            self.g_proj = nn.Linear(D, Dv, bias=False)
            self.gk_proj = nn.Sequential(nn.Linear(D, r, bias=False), nn.Linear(r, Dk, bias=True))
            self.g_norm = RMSNorm(s["dv"])
            self.o_proj = nn.Linear(Dv, D, bias=False)

        def forward(self, x):
            s = self.s
            Bb, T, _ = x.shape
            H, dk, dv = s["H"], s["dk"], s["dv"]
            heads = lambda t, d: t.reshape(Bb, T, H, d).transpose(1, 2)
            q = heads(self.q_proj(x), dk) * dk ** -0.5
            k, v = heads(self.k_proj(x), dk), heads(self.v_proj(x), dv)
            gk = heads(F.logsigmoid(self.gk_proj(x)) / s["tau"], dk)
            o = gla_chunked(q, k, v, gk, self.C, self.c).transpose(1, 2)          # [B,T,H,dv]
            o = self.g_norm(o) * F.silu(self.g_proj(x).reshape(Bb, T, H, dv))
            return self.o_proj(o.reshape(Bb, T, H * dv))

    # ---------------------------------------------------------------- attention / SWA
    if hasattr(F, "scaled_dot_product_attention"):
        def sdpa(q, k, v, mask=None, causal=False):
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)
    else:                                                            # torch 1.13: private, returns (o, w)
        def sdpa(q, k, v, mask=None, causal=False):
            return F._scaled_dot_product_attention(q, k, v, mask, 0.0, False, causal)[0]

    class Attention(nn.Module):
        def __init__(self, D, lc, swa=False, form="sdpa"):
            super().__init__()
            s = ref_model.load_mixer("attn").sizes(lc, D, swa)
            self.H, self.Hkv, self.dh, self.W, self.theta = s["H"], s["Hkv"], s["dh"], s["W"], s["theta"]
            self.form, self._rope = form, {}
            self.q_proj = nn.Linear(D, self.H * self.dh, bias=False)
            self.k_proj = nn.Linear(D, self.Hkv * self.dh, bias=False)
            self.v_proj = nn.Linear(D, self.Hkv * self.dh, bias=False)
            self.o_proj = nn.Linear(self.H * self.dh, D, bias=False)

        def rope(self, x):                                           # x [B,h,T,dh], HF rotate-half
            T, dh = x.shape[2], x.shape[3]
            key = (T, x.dtype)
            if key not in self._rope:
                inv = self.theta ** (-2.0 * torch.arange(dh // 2, dtype=torch.float64) / dh)
                ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
                self._rope[key] = (torch.cos(ang).to(x.dtype), torch.sin(ang).to(x.dtype))
            c, s = self._rope[key]
            x1, x2 = x[..., :dh // 2], x[..., dh // 2:]
            return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], -1)

        def forward(self, x):
            Bb, T, _ = x.shape
            H, Hkv, dh, W = self.H, self.Hkv, self.dh, self.W
            heads = lambda t, h: t.reshape(Bb, T, h, dh).transpose(1, 2)
            q = self.rope(heads(self.q_proj(x), H))
            k = self.rope(heads(self.k_proj(x), Hkv))
            v = heads(self.v_proj(x), Hkv)
            if Hkv != H:
                k, v = k.repeat_interleave(H // Hkv, 1), v.repeat_interleave(H // Hkv, 1)
            f = self.form
            if f == "blocked" and W > 0:
                o = blocked_swa(q, k, v, W)
            elif f == "sdpa" and W == 0:
                o = sdpa(q, k, v, causal=True)
            else:
                i = torch.arange(T)[:, None]
                j = torch.arange(T)[None, :]
                allowed = (j <= i) & ((j > i - W) if W > 0 else True)
                if f.startswith("sdpa"):
                    o = sdpa(q, k, v, mask=torch.zeros(T, T, dtype=q.dtype).masked_fill(~allowed, float("-inf")))
                else:
                    sc = (q @ k.transpose(-1, -2)) * dh ** -0.5
                    o = torch.softmax(sc.masked_fill(~allowed, float("-inf")), -1) @ v
            return self.o_proj(o.transpose(1, 2).reshape(Bb, T, H * dh))

    def blocked_swa(q, k, v, W):
        """Sliding window (i - W < j <= i): query block b (W rows) against key blocks b-1 and b."""
        Bb, H, T, dh = q.shape
        pad = (-T) % W
        if pad:
            q, k, v = (F.pad(t, (0, 0, 0, pad)) for t in (q, k, v))
        nb = (T + pad) // W
        q, k, v = (t.reshape(Bb, H, nb, W, dh) for t in (q, k, v))
        k2 = torch.cat([F.pad(k, (0, 0, 0, 0, 1, 0))[:, :, :nb], k], -2)        # [B,H,nb,2W,dh]
        v2 = torch.cat([F.pad(v, (0, 0, 0, 0, 1, 0))[:, :, :nb], v], -2)
        r = torch.arange(W)[:, None]
        s = torch.arange(2 * W)[None, :]
        allowed = ((s > r) & (s <= r + W)).expand(nb, W, 2 * W).clone()
        allowed[0, :, :W] = False                                              # no block before 0
        sc = (q @ k2.transpose(-1, -2)) * dh ** -0.5
        o = torch.softmax(sc.masked_fill(~allowed, float("-inf")), -1) @ v2
        return o.reshape(Bb, H, nb * W, dh)[:, :, :T]

    # ---------------------------------------------------------------- model (§0.3)
    class MLP(nn.Module):
        def __init__(self, D, Fd):
            super().__init__()
            self.gate_proj = nn.Linear(D, Fd, bias=False)
            self.up_proj = nn.Linear(D, Fd, bias=False)
            self.down_proj = nn.Linear(Fd, D, bias=False)

        def forward(self, x):
            return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))

    class Block(nn.Module):
        def __init__(self, D, Fd, mixer):
            super().__init__()
            self.norm = RMSNorm(D)
            self.mixer = mixer
            if Fd:
                self.mlp_norm = RMSNorm(D)
                self.mlp = MLP(D, Fd)
            self.Fd = Fd

        def forward(self, h):
            h = h + self.mixer(self.norm(h))
            return h + self.mlp(self.mlp_norm(h)) if self.Fd else h

    class LM(nn.Module):
        """backbone.embeddings -> blocks -> backbone.norm_f -> tied head; state_dict names = HF names."""
        def __init__(self, V, D, mixers, Fd):
            super().__init__()
            self.backbone = nn.Module()
            self.backbone.embeddings = nn.Embedding(V, D)
            self.backbone.layers = nn.ModuleList([Block(D, Fd, m) for m in mixers])
            self.backbone.norm_f = RMSNorm(D)

        def logits(self, tokens, rows=None):
            h = self.backbone.embeddings(tokens)
            for blk in self.backbone.layers:
                h = blk(h)
            h = self.backbone.norm_f(h).reshape(-1, h.shape[-1])
            if rows is not None:                                     # the LM head only at labelled rows
                h = h[rows]
            return h @ self.backbone.embeddings.weight.T

        def forward(self, tokens, rows, labels):
            return F.cross_entropy(self.logits(tokens, rows), labels)

    def make_mixer(name, D, lc, form):
        if name in ("longhorn", "mamba"):
            return Selective(name, D, lc, form)
        if name == "mamba2":
            return Mamba2(D, lc, form)
        if name == "gla":
            return GLA(D, lc, form)
        if name in ("attn", "swa"):
            return Attention(D, lc, swa=name == "swa", form=form)
        raise SystemExit(f"compare_pytorch: unknown mixer {name!r}")

    g.update(LM=LM, make_mixer=make_mixer, scan_autograd=scan_autograd, ScanFn=ScanFn)
    return g


FORMS = {"longhorn": ["scan", "scan-fn"], "mamba": ["scan", "scan-fn"],
         "mamba2": ["ssd32", "ssd64", "ssd128"], "gla": ["chunk64/16", "chunk32/16", "chunk16/16"],
         "attn": ["sdpa", "matmul"], "swa": ["blocked", "sdpa-band"]}
FORM_DESC = {"scan": "sequential scan, autograd through the loop", "scan-fn": "sequential scan, hand-written adjoint",
             "sdpa": "SDPA causal", "matmul": "masked softmax", "blocked": "blocked window (2W keys)",
             "sdpa-band": "SDPA + banded mask"}


def form_desc(f):
    if f.startswith("ssd"):
        return f"chunked SSD, chunk {f[3:]}"
    if f.startswith("chunk"):
        C, c = f[5:].split("/")
        return f"chunked GLA, chunk {C}" + (f", sub-chunk {c}" if C != c else "")
    return FORM_DESC.get(f, f)


def mixer_lc(name, D, window):
    """Engine defaults (resolved by the reference plugins' sizes()); swa gets the window."""
    lc = {}
    if name in ("attn", "swa"):
        lc["num_heads"] = 1 if D < 64 else D // 64
        while lc["num_heads"] > 1 and D % lc["num_heads"]:
            lc["num_heads"] -= 1
        lc["num_kv_heads"] = lc["num_heads"]
        if name == "swa":
            lc["window"] = window
    return lc


def fmt_s(s):
    s = int(round(s))
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


# ================================================================================================
# timing
# ================================================================================================
class Bench:
    def __init__(self, torch, g, a):
        self.torch, self.g, self.a = torch, g, a

    def build(self, mixer, cfg, form, seed=0):
        torch, ref_model = self.torch, self.g["ref_model"]
        D = cfg["d_model"]
        gen = torch.Generator().manual_seed(seed)
        mods = []
        for _ in range(cfg["n_layer"]):
            lc = mixer_lc(mixer, D, self.a.window)
            m = self.g["make_mixer"](mixer, D, lc, form)
            # moderate random weights of the reference plugin (the values do not change the work)
            p = ref_model.load_mixer(mixer).make_params(dict(lc), D, gen)
            m.load_state_dict({k: t.float() for k, t in p.items()})
            mods.append(m)
        model = self.g["LM"](cfg["vocab"], D, mods, cfg["d_ff"])
        torch.nn.init.normal_(model.backbone.embeddings.weight, std=0.02)
        return model

    def batch(self, cfg, seed=1):
        torch = self.torch
        gen = torch.Generator().manual_seed(seed)
        B, T, V = cfg["batch"], cfg["seq_len"], cfg["vocab"]
        tokens = torch.randint(0, V, (B, T), generator=gen)
        if cfg["loss"] == "mqar":          # K query positions per sequence, after the K kv pairs
            K = cfg["labels"]
            pos = torch.stack([2 * K + torch.randperm(T - 2 * K, generator=gen)[:K].sort().values
                               for _ in range(B)])
            rows = (pos + T * torch.arange(B)[:, None]).reshape(-1)
            labels = torch.randint(0, V, (B * K,), generator=gen)
        else:
            rows, labels = None, torch.randint(0, V, (B * T,), generator=gen)
        return tokens, rows, labels

    def optimizer(self, model, foreach):
        torch = self.torch
        decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and not n.endswith("A_log")]
        other = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and not n.endswith("A_log"))]
        return torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": other, "weight_decay": 0.0}],
                                 lr=1e-3, foreach=foreach)

    def select_form(self, mixer, cfg):
        """Time every candidate form on one mixer layer of this shape (forward + backward)."""
        torch = self.torch
        forced = self.a.form_map.get(mixer)
        cands = [forced] if forced else FORMS[mixer]
        if len(cands) == 1:
            return cands[0], {}
        B, T, D = cfg["batch"], cfg["seq_len"], cfg["d_model"]
        x0 = torch.randn(B, T, D, generator=torch.Generator().manual_seed(3))
        times = {}
        for f in cands:
            m = self.g["make_mixer"](mixer, D, mixer_lc(mixer, D, self.a.window), f)
            x = x0.clone().requires_grad_()
            ts = []
            for r in range(3):                                       # 1 warm-up + 2 timed
                t0 = time.perf_counter()
                m(x).square().mean().backward()
                ts.append(time.perf_counter() - t0)
            times[f] = min(ts[1:]) * 1e3
        return min(times, key=times.get), times

    def time_step(self, mixer, cfg):
        form, ftimes = self.select_form(mixer, cfg)
        model = self.build(mixer, cfg, form)
        tokens, rows, labels = self.batch(cfg)
        # AdamW: foreach or the per-tensor loop, whichever steps faster on this model
        loss = model(tokens, rows, labels)
        loss.backward()
        opt_t = {}
        for fe in (False, True):
            opt = self.optimizer(model, fe)
            ts = []
            for _ in range(3):
                t0 = time.perf_counter()
                opt.step()
                ts.append(time.perf_counter() - t0)
            opt_t[fe] = min(ts[1:])
        foreach = min(opt_t, key=opt_t.get)
        model = self.build(mixer, cfg, form)                         # fresh weights and moments
        opt = self.optimizer(model, foreach)

        bf16 = self.a.precision == "bf16"

        def step():
            opt.zero_grad(set_to_none=True)
            with self.torch.autocast("cpu", dtype=self.torch.bfloat16, enabled=bf16):
                loss = model(tokens, rows, labels)
            loss.float().backward()
            opt.step()
            return loss.item()

        l0 = step()                                                  # warm-up
        if not math.isfinite(l0):
            raise RuntimeError(f"{mixer} {cfg['name']}: non-finite loss {l0}")
        if not self.a.quick:
            step()
        ts, t_start = [], time.perf_counter()
        while len(ts) < 3 or (time.perf_counter() - t_start < self.a.min_time and len(ts) < 200):
            t0 = time.perf_counter()
            step()
            ts.append(time.perf_counter() - t0)
        return dict(pytorch_ms=statistics.median(ts) * 1e3, pytorch_ms_all=[round(t * 1e3, 2) for t in ts],
                    pytorch_form=form, form_ms={k: round(v, 2) for k, v in ftimes.items()},
                    adamw_foreach=foreach, loss0=l0)


# ================================================================================================
# eidetic side
# ================================================================================================
def eidetic_support(path):
    """-> (set of flags of `bench train`, None) or (None, reason)."""
    if not path or not os.access(path, os.X_OK):
        return None, f"no eidetic binary at {path}"
    try:
        p = subprocess.run([path, "bench", "train", "--help"], capture_output=True, text=True, timeout=60,
                           env=eidetic_env())
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, f"{path} bench train --help: {e}"
    text = p.stdout + p.stderr
    if "--mixer" not in text:
        first = (text.strip().splitlines() or ["(no output)"])[0]
        return None, f"{path} has no single-config `bench train` mode yet ({first.strip()})"
    return set(re.findall(r"--[a-z][a-z0-9-]*", text)), None


_EID_MACHINE = {}                  # sgemm peak and bandwidth eidetic measured on its first call
_ORIG_ENV = {}                     # the caller's values of ENV_KEYS: eidetic runs with them, not ours
_EID_SHARED = []                   # keys eidetic gets from our environment instead (--eidetic-env)


def eidetic_env():
    env = dict(os.environ)
    for k in ENV_KEYS:
        if k in _EID_SHARED:
            continue
        if _ORIG_ENV.get(k) is None:
            env.pop(k, None)
        else:
            env[k] = _ORIG_ENV[k]
    return env


def run_eidetic(path, flags, mixer, cfg, a):
    fd, jpath = tempfile.mkstemp(prefix="eid_bench_", suffix=".jsonl")
    os.close(fd)
    cmd = [path, "bench", "train", "--mixer", mixer, "--d-model", str(cfg["d_model"]),
           "--n-layer", str(cfg["n_layer"]), "--d-ff", str(cfg["d_ff"]), "--seq-len", str(cfg["seq_len"]),
           "--batch", str(cfg["batch"]), "--loss", cfg["loss"], "--threads", str(a.threads), "--json", jpath]
    if a.precision != "fp32":
        cmd += ["--precision", a.precision]
    opt = {"--window": a.window if mixer == "swa" else None, "--min-time": a.min_time,
           "--vocab": cfg["vocab"], "--kv-pairs": cfg["labels"] if cfg["loss"] == "mqar" else None,
           "--peak-gflops": _EID_MACHINE.get("peak"), "--bw-gbs": _EID_MACHINE.get("bw")}
    for k, v in opt.items():
        if v is not None and k in flags:
            cmd += [k, str(v)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, env=eidetic_env())
        with open(jpath) as f:
            lines = [l for l in f.read().splitlines() if l.strip()]
        if p.returncode != 0 or not lines:
            msg = (p.stderr.strip().splitlines() or p.stdout.strip().splitlines() or ["no output"])[-1]
            return None, f"rc {p.returncode}: {msg}", cmd
        m = re.search(r"sgemm peak ([0-9.]+) GFLOP/s, read bandwidth ([0-9.]+) GB/s", p.stderr)
        if m and not _EID_MACHINE:         # measured once; later calls skip eidetic's peak suite
            _EID_MACHINE.update(peak=m.group(1), bw=m.group(2))
        return json.loads(lines[-1]), None, cmd
    except (OSError, subprocess.TimeoutExpired, json.JSONDecodeError) as e:
        return None, str(e), cmd
    finally:
        try:
            os.unlink(jpath)
        except OSError:
            pass


# ================================================================================================
# --check: the fast forms against tests/ref
# ================================================================================================
CHECK_LC = {"longhorn": {"d_state": 6, "dt_rank": 3}, "mamba": {"d_state": 6, "dt_rank": 3},
            "mamba2": {"d_state": 8, "headdim": 8}, "gla": {"num_heads": 2},
            "attn": {"num_heads": 2, "num_kv_heads": 2}, "swa": {"num_heads": 2, "num_kv_heads": 2, "window": 8}}
CHECK_FORMS = {"mamba2": ["ssd16", "ssd32", "ssd128"], "gla": ["chunk32/8", "chunk16/16", "chunk64/16"]}


def run_check(torch, g, mixers):
    ref_model = g["ref_model"]
    F64 = torch.float64
    D, T, Bb = 16, 40, 2          # T spans several chunks / sub-chunks / window blocks of the forms
    # negative control for tests/cli/compare_pytorch.sh: scale the PyTorch side's weights by (1 + X)
    perturb = float(os.environ.get("COMPARE_PYTORCH_PERTURB", "0") or 0)
    results = []

    def rel(a, b):
        return ((a - b).abs().max() / b.abs().max()).item()

    def record(name, err, tol):
        ok = math.isfinite(err) and err <= tol
        results.append(ok)
        print(f"  {'ok  ' if ok else 'FAIL'} {name}: rel err {err:.2e} (tol {tol:g})", flush=True)

    for mixer in mixers:
        mod = ref_model.load_mixer(mixer)
        gen = torch.Generator().manual_seed(11)
        lc = dict(CHECK_LC[mixer])
        P = mod.make_params(lc, D, gen)                              # fills the resolved sizes into lc
        W = {"m." + k: t.clone().requires_grad_() for k, t in P.items()}
        x = torch.randn(Bb, T, D, generator=gen, dtype=F64)
        with torch.no_grad():                                        # the reference's own recurrence
            ref = torch.stack([mod.forward(W, "m.", lc, D, x[b]) for b in range(Bb)])
        # gradients by autograd through the reference (Mamba-2: its quadratic form, which the plugin's
        # selftest equates with the recurrence; the recurrence updates its state in place)
        kw = {"ssd": mod.ssd_quadratic} if mixer == "mamba2" else {}
        xr = x.clone().requires_grad_()
        r = torch.randn(ref.shape, generator=gen, dtype=F64)
        (torch.stack([mod.forward(W, "m.", lc, D, xr[b], **kw) for b in range(Bb)]) * r).sum().backward()
        ref_grads = {k[2:]: t.grad for k, t in W.items()}
        for form in CHECK_FORMS.get(mixer, FORMS[mixer]):
            m = g["make_mixer"](mixer, D, dict(lc), form)
            m.load_state_dict({k: (t * (1 + perturb)).float() for k, t in P.items()})
            with torch.no_grad():
                out = m(x.float()).double()
            record(f"[{mixer} {form}] forward fp32 vs tests/ref (B={Bb}, T={T}, D={D})", rel(out, ref), 1e-4)
            m = m.double()
            m.load_state_dict({k: t * (1 + perturb) for k, t in P.items()})   # exact float64 weights
            xd = x.clone().requires_grad_()
            (m(xd) * r).sum().backward()
            errs = [rel(xd.grad, xr.grad)] + [rel(p.grad, ref_grads[n]) for n, p in m.named_parameters()]
            record(f"[{mixer} {form}] gradients of input and {len(errs) - 1} parameters, float64", max(errs), 1e-8)
        # whole model: 2 layers with MLP, tied head; logits and labelled-row loss against ref_model.forward
        V, Fd = 40, 24
        layers, mods = [], []
        Wm = {}
        for i in range(2):
            lci = dict(CHECK_LC[mixer])
            Pi = mod.make_params(lci, D, gen)
            m = g["make_mixer"](mixer, D, dict(lci), FORMS[mixer][0])
            m.load_state_dict({k: t.float() for k, t in Pi.items()})
            mods.append(m)
            layers.append((lci, mod, Fd))
        model = g["LM"](V, D, mods, Fd)
        with torch.no_grad():
            for n, p in model.named_parameters():
                if "mixer" not in n:
                    p.copy_(1 + 0.2 * torch.randn(p.shape, generator=gen) if p.dim() == 1
                            else torch.randn(p.shape, generator=gen) / math.sqrt(p.shape[1]))
        Wm = {k: t.double() for k, t in model.state_dict().items()}
        cfg = {"d_model": D, "norm_eps": 1e-5, "tie_embeddings": True}
        tokens = torch.randint(0, V, (Bb, T), generator=gen)
        ref_lo = torch.cat([ref_model.forward(cfg, layers, Wm, tokens[b].tolist()) for b in range(Bb)])
        rows = torch.tensor([5, 17, 33, T - 1, T + 2, T + 20, 2 * T - 1])
        labels = torch.randint(0, V, (len(rows),), generator=gen)
        with torch.no_grad():
            lo = model.logits(tokens).double()
            loss = model(tokens, rows, labels).item()
        record(f"[{mixer}] 2-layer model + SwiGLU, logits vs ref_model.forward", rel(lo, ref_lo), 1e-4)
        ref_loss = torch.nn.functional.cross_entropy(ref_lo[rows], labels).item()
        record(f"[{mixer}] loss at labelled rows only (LM head on those rows)", abs(loss - ref_loss) / abs(ref_loss), 1e-5)
    nfail = results.count(False)
    print(f"compare_pytorch --check: {results.count(True)} passed, {nfail} failed")
    return 0 if nfail == 0 else 1


# ================================================================================================
def main():
    ap = argparse.ArgumentParser(description="eidetic vs PyTorch training-step speed (issue #5)")
    ap.add_argument("--eidetic", default=os.path.join(ROOT, "build", "eidetic"), help="eidetic binary (default build/eidetic)")
    ap.add_argument("--mixers", default=",".join(MIXERS), help="comma list (default all six)")
    ap.add_argument("--configs", default=None, help="comma list of A128,A256,B512 (A<D>/B<D> allowed); default all three")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--min-time", type=float, default=None, help="seconds of timed steps per cell (default 5; --quick 0.3)")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"), help="output directory")
    ap.add_argument("--quick", action="store_true", help="smoke sizes QA64,QB64 (< 1 minute)")
    ap.add_argument("--window", type=int, default=64, help="swa window W (default 64)")
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                    help="bf16: PyTorch under torch.autocast(cpu, bfloat16) against eidetic --precision bf16")
    ap.add_argument("--form", action="append", default=[], metavar="MIXER=FORM",
                    help="force a PyTorch form instead of timing the candidates (e.g. gla=chunk64/16)")
    ap.add_argument("--check", action="store_true", help="check the PyTorch forms against tests/ref and exit")
    ap.add_argument("--blas-env", choices=["auto"] + list(BLAS_ENVS), default="auto",
                    help="threading of torch + OpenBLAS (default auto: time the candidates, use the fastest)")
    ap.add_argument("--malloc", choices=["keep", "default"], default="keep",
                    help="keep: glibc malloc keeps freed memory (MALLOC_MMAP_MAX_=0, no page faults per step; default)")
    ap.add_argument("--eidetic-env", choices=["same-omp", "caller"], default="same-omp",
                    help="same-omp (default): eidetic runs with the caller's environment but the OMP_WAIT_POLICY "
                         "chosen for PyTorch (libgomp's spinning hurts both sides alike on a busy machine); "
                         "caller: exactly the caller's environment")
    ap.add_argument("--calibrate-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--calib-limit-ms", type=float, default=0, help=argparse.SUPPRESS)
    a = ap.parse_args()
    mixers = [m.strip() for m in a.mixers.split(",") if m.strip()]
    bad = [m for m in mixers if m not in MIXERS]
    if bad:
        ap.error(f"unknown mixer(s) {bad}; known: {','.join(MIXERS)}")
    a.form_map = {}
    for s in a.form:
        m, _, f = s.partition("=")
        if m not in FORMS or f not in FORMS[m] and not re.fullmatch(r"ssd\d+|chunk\d+/\d+", f):
            ap.error(f"--form {s}: forms of {m}: {FORMS.get(m)}")
        a.form_map[m] = f
    if a.min_time is None:
        a.min_time = 0.3 if a.quick else 5.0
    cfg_names = a.configs.split(",") if a.configs else (["QA64", "QB64"] if a.quick else ["A128", "A256", "B512"])
    cfgs = [config(c.strip()) for c in cfg_names if c.strip()]

    orig = {k: os.environ.get(k) for k in ENV_KEYS}
    notes = setup_env(a.threads)
    env_note = None
    if not a.check and not a.calibrate_worker:
        if ENV_MARK in os.environ:                                   # the re-executed process
            env_note = os.environ.pop(ENV_MARK)
        else:
            if a.blas_env == "auto":
                best, scores = calibrate(a)
            else:
                best, scores = a.blas_env, {}
            env = blas_env(best, a.malloc)
            env[ENV_MARK] = json.dumps({"env": best, "scores": scores, "notes": notes, "orig": orig})
            sys.stdout.flush()
            os.execve(sys.executable, [sys.executable, os.path.abspath(__file__)] + sys.argv[1:], env)
    try:
        import torch
    except ImportError:
        print("compare_pytorch: torch is not importable (use /usr/bin/python3 with python3-torch)", file=sys.stderr)
        return 3
    torch.set_num_threads(a.threads)
    torch.set_flush_denormal(True)
    g = define(torch)
    if a.check:
        return run_check(torch, g, mixers)
    if a.calibrate_worker:
        return calibrate_worker(torch, g, a)
    env_note = json.loads(env_note) if env_note else {"env": "pthread", "scores": {}, "notes": notes, "orig": orig}
    env_name, env_scores, notes = env_note["env"], env_note["scores"], env_note["notes"]
    _ORIG_ENV.update(env_note["orig"])
    if a.eidetic_env == "same-omp":
        _EID_SHARED.append("OMP_WAIT_POLICY")
    env_line = ("malloc: " + " ".join(f"{k}={v}" for k, v in MALLOC_KEEP.items()) + " (freed memory is kept)"
                if all(os.environ.get(k) == v for k, v in MALLOC_KEEP.items()) else "malloc: glibc defaults") + \
        f"; threading: {env_name} = {BLAS_ENVS[env_name][0]}" + \
        (" (chosen by timing a small step: " + ", ".join(f"{k} {v:.0f} ms" if v else f"{k} failed"
                                                        for k, v in env_scores.items()) + ")" if env_scores else " (forced)")

    core, ob_cfg, ob_path = openblas_core()
    cfg_lines = [l.strip() for l in torch.__config__.show().splitlines() if l.strip()]
    head = [f"torch {torch.__version__}, {a.threads} thread(s); " + "; ".join(notes), env_line,
            f"OpenBLAS core in use: {core} ({ob_cfg.strip()}; {ob_path})"] + \
           [l for l in cfg_lines[:7] if not l.startswith("- Build settings")] + \
           [", ".join(re.findall(r"(?:BLAS_INFO|LAPACK_INFO|USE_MKLDNN|USE_OPENMP)=[^,]*", torch.__config__.show()))]
    for l in head:
        print(l)

    flags, why = eidetic_support(a.eidetic)
    if why:
        print(f"NOTE: {why}: printing only the PyTorch side.", flush=True)
    else:
        pol = eidetic_env().get("OMP_WAIT_POLICY")
        head.append(f"eidetic: {a.eidetic} bench train --mixer M --d-model D ... --threads {a.threads} "
                    f"--min-time {a.min_time:g} (its own measurement, median step); environment: the caller's"
                    + (f", OMP_WAIT_POLICY={pol or 'unset'} as for PyTorch" if a.eidetic_env == "same-omp" else ""))
        print(head[-1])
    os.makedirs(a.out, exist_ok=True)
    jobs = [(m, c) for c in cfgs for m in mixers]
    weight = lambda c: c["batch"] * c["seq_len"] * c["n_layer"] * c["d_model"] * (3 if c["d_ff"] else 1)
    total_w, done_w, t_all = sum(weight(c) for _, c in jobs), 0, time.perf_counter()
    bench = Bench(torch, g, a)
    rows = []
    for n, (mixer, cfg) in enumerate(jobs):
        el = time.perf_counter() - t_all
        eta = "?" if not done_w else fmt_s(el / done_w * (total_w - done_w))
        print(f"[{n + 1}/{len(jobs)}] {mixer} {cfg['name']}: elapsed {fmt_s(el)}, ETA {eta}", file=sys.stderr, flush=True)
        row = dict(mixer=mixer, config=cfg["name"], **{k: cfg[k] for k in
                   ("d_model", "n_layer", "d_ff", "seq_len", "batch", "vocab", "loss", "labels")},
                   window=a.window if mixer == "swa" else None, threads=a.threads, torch=torch.__version__,
                   openblas_core=core, blas_env=env_name, eidetic_omp_wait_policy=eidetic_env().get("OMP_WAIT_POLICY"),
                   target=target(mixer, cfg), precision=a.precision)
        try:
            row.update(bench.time_step(mixer, cfg))
        except (RuntimeError, MemoryError) as e:
            row.update(pytorch_ms=None, pytorch_error=str(e))
        if row.get("pytorch_ms"):
            row["pytorch_tokens_per_s"] = round(cfg["batch"] * cfg["seq_len"] / (row["pytorch_ms"] / 1e3), 1)
        eid = None
        if flags is not None:
            eid, err, cmd = run_eidetic(a.eidetic, flags, mixer, cfg, a)
            row["eidetic_cmd"] = " ".join(cmd)
            if err:
                row["eidetic_error"] = err
                print(f"  eidetic failed: {err}", file=sys.stderr)
        row["eidetic"] = eid
        row["eidetic_ms"] = eid.get("step_ms") if eid else None
        row["eidetic_tokens_per_s"] = eid.get("tokens_per_s") if eid else None
        sp = row["pytorch_ms"] / row["eidetic_ms"] if row.get("pytorch_ms") and row["eidetic_ms"] else None
        row["speedup"] = round(sp, 3) if sp else None
        row["met"] = (sp >= row["target"]) if sp else None
        # PyTorch's MFU on eidetic's counted matrix FLOPs and the same sgemm peak: a speed-up can be
        # at most 100 / that (eidetic at 100% MFU), so a target above it is out of reach of any engine
        # on this BLAS
        if eid and row.get("pytorch_ms") and eid.get("gflop_per_step") and eid.get("peak_gflops"):
            row["eidetic_mfu_pct"] = round(eid["mfu_pct"], 1)
            row["pytorch_mfu_pct"] = round(100 * eid["gflop_per_step"] / (row["pytorch_ms"] / 1e3) / eid["peak_gflops"], 1)
            row["speedup_ceiling"] = round(100 / row["pytorch_mfu_pct"], 2)
        rows.append(row)
        done_w += weight(cfg)
        print(f"  pytorch {row.get('pytorch_ms') or float('nan'):.1f} ms/step ({row.get('pytorch_form')}; "
              f"candidates {row.get('form_ms')}), eidetic "
              f"{row['eidetic_ms'] if row['eidetic_ms'] is not None else '-'} ms/step", file=sys.stderr, flush=True)

    f1 = lambda v: "-" if v is None else f"{v:.1f}"
    table = ["| mixer | config | PyTorch ms/step | eidetic ms/step | speed-up × | target | met | "
             "eidetic MFU % | PyTorch MFU % | ceiling × | PyTorch form |",
             "|---|---|---:|---:|---:|---:|---|---:|---:|---:|---|"]
    for r in rows:
        form = r.get("pytorch_form")
        fd = f"{form}: {form_desc(form)}" if form else r.get("pytorch_error", "-")
        if r.get("form_ms") and len(r["form_ms"]) > 1:
            fd += " (1 layer fwd+bwd: " + ", ".join(f"{k} {v:.0f} ms" for k, v in r["form_ms"].items()) + ")"
        if form:
            fd += f"; AdamW foreach={r['adamw_foreach']}"
        table.append(f"| {r['mixer']} | {r['config']} | {f1(r.get('pytorch_ms'))} | {f1(r['eidetic_ms'])} | "
                     f"{'-' if r['speedup'] is None else format(r['speedup'], '.2f')} | {r['target']:g}× | "
                     f"{'-' if r['met'] is None else ('yes' if r['met'] else 'no')} | {f1(r.get('eidetic_mfu_pct'))} | "
                     f"{f1(r.get('pytorch_mfu_pct'))} | {'-' if not r.get('speedup_ceiling') else format(r['speedup_ceiling'], '.2f')} | {fd} |")
    desc = []
    for c in cfgs:
        desc.append(f"- {c['name']}: d_model {c['d_model']}, {c['n_layer']} layers, d_ff {c['d_ff']}, seq {c['seq_len']}, "
                    f"batch {c['batch']}, vocab {c['vocab']} tied, loss "
                    + (f"at {c['labels']} MQAR query positions per sequence" if c["loss"] == "mqar" else "at every position"))
    prec = "fp32" if a.precision == "fp32" else "bf16 (PyTorch: torch.autocast cpu bfloat16; eidetic: --precision bf16)"
    md = [f"# eidetic vs PyTorch: one training step (forward + backward + AdamW), {prec}", "",
          f"{time.strftime('%Y-%m-%d %H:%M')}; min-time {a.min_time:g} s per cell (median step); swa window {a.window}.", ""] + \
         [f"    {l}" for l in head] + [""] + desc + [""] + \
         ([f"NOTE: {why}: PyTorch side only.", ""] if why else []) + \
         ["MFU = the step's matrix FLOPs as eidetic counts them (eid_gemm, the same model) ÷ step time ÷ the sgemm "
          "peak eidetic measured in this run. ceiling × = 100 ÷ PyTorch MFU: the largest speed-up any engine could "
          "show with this BLAS (it would run at 100% MFU).", ""] + table
    out_md = os.path.join(a.out, "compare_pytorch.md")
    with open(out_md, "w") as f:
        f.write("\n".join(md) + "\n")
    with open(os.path.join(a.out, "compare_pytorch.jsonl"), "a") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    print()
    print("\n".join(table))
    print(f"\nwrote {out_md} and {os.path.join(a.out, 'compare_pytorch.jsonl')} "
          f"(total {fmt_s(time.perf_counter() - t_all)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
