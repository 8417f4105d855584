#!/usr/bin/python3
"""The lm-tiny model trained with PyTorch on eidetic's prepared dataset (docs/lm.md, "lm-tiny against
PyTorch at equal wall-clock").

    /usr/bin/python3 bench/lm_tiny_pytorch.py --data DIR --init CKPT --seconds S [--threads 2] [--out F]
    /usr/bin/python3 bench/lm_tiny_pytorch.py --data DIR --init CKPT --eval-only

The model is lm-tiny's: 4 Longhorn blocks (expand 2, N 16, conv 4, dt_rank 8), each followed by a
SwiGLU MLP (d_ff 256), d_model 128, tied embedding, vocabulary 320 — built from the weights of an
eidetic checkpoint (--init: `model.safetensors` with eidetic's = Hugging Face's tensor names), so both
start from the same initialisation. Data: the dataset's shards read with numpy (format: docs/lm.md,
"Shard format"), turned into rows exactly as src/data/corpus.c does — each split one stream of
documents each followed by the end-of-text token; training rows are non-overlapping windows of T + 1
tokens visited in a fresh random order per epoch; validation rows are the stream's windows in order,
the last one padded; every recurrence and the short conv reset at each document's first token and at
the row start (SEG_START). Bits per byte = Σ nats over validation tokens / ln 2 / the split's UTF-8
bytes (from the shard header), as eidetic computes it.

Optimiser as lm-tiny's: AdamW (β 0.9/0.999, eps 1e-8, weight decay 0.1 on matrices only, not on norms,
biases or D), global gradient-norm clip 1.0, linear warm-up 100 steps then cosine to lr/10. With
--seconds the cosine runs over training time instead of steps (p = time since warm-up / time left
after it), so it ends exactly when the budget is spent however the speed of a shared machine varies;
evaluations are not counted in the budget.

The Longhorn scan is the sequential form with a hand-written adjoint (bench/compare_pytorch.py's
scan-fn, its fastest form at this shape); --eval-only checks that the validation loss of the --init
weights matches `eidetic eval` on the same checkpoint (the faithfulness check)."""
import argparse
import json
import math
import os
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ENV_MARK = "LM_TINY_PYTORCH_ENV"


def reexec_with_env(threads):
    """OpenBLAS core type, thread counts, passive OpenMP waiting and glibc malloc that keeps freed
    memory: set before the interpreter starts (bench/compare_pytorch.py found these matter on 2 busy cores)."""
    if os.environ.get(ENV_MARK):
        return
    sys.path.insert(0, HERE)
    import compare_pytorch as cp
    cp.setup_env(threads)
    env = dict(os.environ)
    env.update(cp.MALLOC_KEEP)
    env["OMP_WAIT_POLICY"] = "PASSIVE"
    env[ENV_MARK] = "1"
    os.execve(sys.executable, [sys.executable] + sys.argv, env)


def read_shard(path, np):
    with open(path, "rb") as f:
        hdr = f.read(64)
        magic = hdr[:8]
        version, vocab, width, _ = struct.unpack("<4I", hdr[8:24])
        tok_hash, docs, tokens, nbytes, _ = struct.unpack("<5Q", hdr[24:64])
        if magic != b"EIDTOKS\0" or version != 1 or width not in (2, 4):
            raise SystemExit(f"{path}: not an eidetic token shard (magic {magic!r}, version {version}, width {width})")
        toks = np.fromfile(f, dtype=np.uint16 if width == 2 else np.uint32, count=tokens)
        off = np.fromfile(f, dtype=np.uint64, count=docs + 1)
    if len(toks) != tokens or len(off) != docs + 1 or off[-1] != tokens:
        raise SystemExit(f"{path}: truncated shard")
    return dict(vocab=vocab, tokens=toks.astype(np.int64), off=off.astype(np.int64), bytes=nbytes)


def stream(sh, eot, np):
    """Documents in order, each followed by eot; start[i] = 1 where a document's first token is."""
    n_docs = len(sh["off"]) - 1
    n = len(sh["tokens"]) + n_docs
    s = np.empty(n, dtype=np.int64)
    start = np.zeros(n, dtype=np.bool_)
    pos = 0
    for d in range(n_docs):
        a, b = sh["off"][d], sh["off"][d + 1]
        s[pos:pos + b - a] = sh["tokens"][a:b]
        start[pos] = True
        pos += b - a
        s[pos] = eot
        pos += 1
    return s, start


def define(torch):
    nn, F = torch.nn, torch.nn.functional
    sys.path.insert(0, HERE)
    import compare_pytorch as cp
    ScanFn = cp.define(torch)["ScanFn"]

    class RMSNorm(nn.Module):
        def __init__(self, d, eps=1e-5):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(d))
            self.eps = eps

        def forward(self, x):
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight

    class Longhorn(nn.Module):
        """Longhorn (docs/layers.md §2.2) with SEG_START resets; HF leaf names as eidetic saves them."""
        def __init__(self, D, I=256, N=16, K=4, R=8):
            super().__init__()
            self.I, self.N, self.K, self.R = I, N, K, R
            self.in_proj = nn.Linear(D, 2 * I, bias=False)
            self.conv1d = nn.Conv1d(I, I, K, groups=I, bias=True)
            self.x_proj = nn.Linear(I, R + 2 * N, bias=False)
            self.dt_proj = nn.Linear(R, I, bias=True)
            self.D = nn.Parameter(torch.ones(I))
            self.out_proj = nn.Linear(I, D, bias=False)

        def conv(self, x, seg):
            """Causal depthwise conv of x [B,T,I] that sees no token of an earlier segment:
            out_t = bias + Σ_j w[K-1-j] x_{t-j} [seg_{t-j} == seg_t]."""
            w = self.conv1d.weight[:, 0, :]                            # [I, K]
            out = x * w[:, self.K - 1] + self.conv1d.bias
            for j in range(1, self.K):
                xs = F.pad(x[:, :-j], (0, 0, j, 0))
                same = F.pad(seg[:, j:] == seg[:, :-j], (j, 0)).to(x.dtype)[..., None]
                out = out + xs * same * w[:, self.K - 1 - j]
            return out

        def forward(self, x, seg, reset):
            I, N, R = self.I, self.N, self.R
            xi, z = self.in_proj(x).split([I, I], -1)
            u = F.silu(self.conv(xi, seg))
            r, k, q = self.x_proj(u).split([R, N, N], -1)
            tm = lambda t: t.transpose(0, 1).contiguous()               # [B,T,.] -> [T,B,.]
            uT, kT, qT = tm(u), tm(k), tm(q)
            beta = tm(torch.sigmoid(self.dt_proj(r)))
            k2 = kT * kT
            eps = beta / (1 + beta * k2.sum(-1, keepdim=True))
            a = 1 - eps[..., None] * k2[:, :, None, :]                  # [T,B,I,N]
            a = a * (~reset).T.to(a.dtype)[:, :, None, None]            # state zeroed before a segment start
            b = (eps * uT)[..., None] * kT[:, :, None, :]
            H = ScanFn.apply(a, b)
            y = (H @ qT[..., None]).squeeze(-1) + self.D * uT
            return self.out_proj(y.transpose(0, 1) * F.silu(z))

    class MLP(nn.Module):
        def __init__(self, D, Fd):
            super().__init__()
            self.gate_proj = nn.Linear(D, Fd, bias=False)
            self.up_proj = nn.Linear(D, Fd, bias=False)
            self.down_proj = nn.Linear(Fd, D, bias=False)

        def forward(self, x):
            return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))

    class Block(nn.Module):
        def __init__(self, D, Fd):
            super().__init__()
            self.norm, self.mixer = RMSNorm(D), Longhorn(D)
            self.mlp_norm, self.mlp = RMSNorm(D), MLP(D, Fd)

        def forward(self, h, seg, reset):
            h = h + self.mixer(self.norm(h), seg, reset)
            return h + self.mlp(self.mlp_norm(h))

    class LM(nn.Module):
        def __init__(self, V, D, L, Fd):
            super().__init__()
            self.backbone = nn.Module()
            self.backbone.embeddings = nn.Embedding(V, D)
            self.backbone.layers = nn.ModuleList([Block(D, Fd) for _ in range(L)])
            self.backbone.norm_f = RMSNorm(D)

        def forward(self, tokens, reset, labels):
            """Sum of nats over labelled positions (label >= 0) and their count."""
            seg = torch.cumsum(reset.to(torch.int64), 1)
            h = self.backbone.embeddings(tokens)
            for blk in self.backbone.layers:
                h = blk(h, seg, reset)
            h = self.backbone.norm_f(h).reshape(-1, h.shape[-1])
            logits = h @ self.backbone.embeddings.weight.T
            lab = labels.reshape(-1)
            return F.cross_entropy(logits, lab, ignore_index=-1, reduction="sum"), int((lab >= 0).sum())

    return LM


def load_safetensors(path, torch):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
        base = 8 + n
        out = {}
        for k, v in hdr.items():
            if k == "__metadata__":
                continue
            if v["dtype"] != "F32":
                raise SystemExit(f"{path}: {k} is {v['dtype']}, expected F32")
            a, b = v["data_offsets"]
            f.seek(base + a)
            out[k] = torch.frombuffer(bytearray(f.read(b - a)), dtype=torch.float32).reshape(v["shape"])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--init", required=True, help="eidetic checkpoint directory (model.safetensors) to start from")
    ap.add_argument("--seconds", type=float, default=0, help="wall-clock budget of training (evaluations excluded)")
    ap.add_argument("--steps", type=int, default=1500, help="steps when no --seconds")
    ap.add_argument("--eval-only", action="store_true")
    ap.add_argument("--eval-every-s", type=float, default=0, help="also evaluate every this many training seconds")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--eot", type=int, default=256, help="end-of-text id (byte tokenizer: 256)")
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    reexec_with_env(a.threads)
    import numpy as np
    import torch
    torch.set_num_threads(a.threads)
    torch.set_flush_denormal(True)
    torch.manual_seed(a.seed)

    tr, va = read_shard(os.path.join(a.data, "train.tok"), np), read_shard(os.path.join(a.data, "val.tok"), np)
    T = a.seq_len
    ts, tstart = stream(tr, a.eot, np)
    vs, vstart = stream(va, a.eot, np)
    W = (len(ts) - 1) // T
    nv = -(-(len(vs) - 1) // T)

    LM = define(torch)
    sd = load_safetensors(os.path.join(a.init, "model.safetensors"), torch)
    V, D = sd["backbone.embeddings.weight"].shape
    L = 1 + max(int(k.split(".")[2]) for k in sd if k.startswith("backbone.layers."))
    Fd = sd["backbone.layers.0.mlp.gate_proj.weight"].shape[0]
    model = LM(V, D, L, Fd)
    sd = {k: (v[:, None, :] if k.endswith("conv1d.weight") and v.dim() == 2 else v) for k, v in sd.items()}
    model.load_state_dict(sd, strict=True)

    def val_rows():
        for r in range(nv):
            a0 = r * T
            x = vs[a0:a0 + T]
            y = vs[a0 + 1:a0 + T + 1]
            st = vstart[a0:a0 + T].copy()
            st[0] = True
            n = len(x)
            lab = np.full(T, -1, dtype=np.int64)
            lab[:len(y)] = y
            xx = np.zeros(T, dtype=np.int64)
            xx[:n] = x
            sst = np.zeros(T, dtype=np.bool_)
            sst[:n] = st
            yield xx, sst, lab

    def evaluate():
        model.eval()
        tot, cnt = 0.0, 0
        with torch.no_grad():
            rows = list(val_rows())
            for i in range(0, len(rows), 64):
                blk = rows[i:i + 64]
                x = torch.from_numpy(np.stack([r[0] for r in blk]))
                s = torch.from_numpy(np.stack([r[1] for r in blk]))
                y = torch.from_numpy(np.stack([r[2] for r in blk]))
                l, c = model(x, s, y)
                tot += float(l)
                cnt += c
        model.train()
        return tot / cnt, tot / math.log(2) / va["bytes"]

    res = dict(tokens_per_row=T, batch=a.batch, threads=a.threads, train_windows=W, val_rows=nv,
               val_bytes=int(va["bytes"]), torch=torch.__version__, curve=[])
    if a.eval_only:
        t0 = time.time()
        loss, bpb = evaluate()
        print(f"loss: {loss:.4f}\nperplexity: {math.exp(loss):.4f}\nbits_per_byte: {bpb:.4f}")
        print(f"(validation {nv} rows of {T}, {va['bytes']} bytes, {time.time() - t0:.1f}s)", file=sys.stderr)
        return 0

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    other = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": other, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.999), eps=1e-8, foreach=False)
    rng = np.random.default_rng(a.seed)
    order, epoch_pos = rng.permutation(W), 0
    total = a.steps if not a.seconds else 10 ** 9

    t_warm = [None]                                                  # training seconds when warm-up ended

    def lr_at(step):
        if step < a.warmup:
            return a.lr * (step + 1) / a.warmup
        if a.seconds:                                                # cosine over the remaining time budget
            if t_warm[0] is None:
                t_warm[0] = train_s
            p = min(1.0, (train_s - t_warm[0]) / max(1e-9, a.seconds - t_warm[0]))
        else:
            p = min(1.0, (step - a.warmup) / max(1, total - a.warmup))
        return 0.1 * a.lr + 0.5 * 0.9 * a.lr * (1 + math.cos(math.pi * p))

    train_s, step, next_eval = 0.0, 0, a.eval_every_s or float("inf")
    loss0, bpb0 = evaluate()
    res["curve"].append(dict(step=0, train_s=0.0, val_loss=loss0, val_bpb=bpb0))
    print(f"step 0 val_loss {loss0:.4f} bpb {bpb0:.4f}", file=sys.stderr, flush=True)
    train_cpu = 0.0
    while step < total:
        t0, c0 = time.perf_counter(), time.process_time()
        idx = []
        for _ in range(a.batch):
            if epoch_pos == W:
                order, epoch_pos = rng.permutation(W), 0
            idx.append(order[epoch_pos])
            epoch_pos += 1
        x = torch.from_numpy(np.stack([ts[k * T:k * T + T] for k in idx]))
        y = torch.from_numpy(np.stack([ts[k * T + 1:k * T + T + 1] for k in idx]))
        st = np.stack([tstart[k * T:k * T + T] for k in idx])
        st[:, 0] = True
        s = torch.from_numpy(st)
        for gp in opt.param_groups:
            gp["lr"] = lr_at(step)
        opt.zero_grad(set_to_none=True)
        l, c = model(x, s, y)
        (l / c).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        train_s += time.perf_counter() - t0
        train_cpu += time.process_time() - c0
        if a.seconds and train_s >= a.seconds:
            break
        if train_s >= next_eval:
            lv, bv = evaluate()
            res["curve"].append(dict(step=step, train_s=round(train_s, 1), val_loss=lv, val_bpb=bv))
            print(f"step {step} train {train_s:.0f}s loss {float(l) / c:.4f} val_loss {lv:.4f} bpb {bv:.4f}",
                  file=sys.stderr, flush=True)
            next_eval += a.eval_every_s
    loss, bpb = evaluate()
    res.update(steps=step, train_s=round(train_s, 1), train_cpu_s=round(train_cpu, 1),
               tokens=step * a.batch * T, val_loss=loss, val_bpb=bpb)
    res["curve"].append(dict(step=step, train_s=round(train_s, 1), val_loss=loss, val_bpb=bpb))
    print(f"steps: {step}\ntokens: {step * a.batch * T}\ntrain_seconds: {train_s:.1f}\n"
          f"train_cpu_seconds: {train_cpu:.1f}\nval_loss: {loss:.4f}\nperplexity: {math.exp(loss):.4f}\nbits_per_byte: {bpb:.4f}")
    if a.out:
        with open(a.out, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
