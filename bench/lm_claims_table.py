#!/usr/bin/env python3
"""Tables (and a gnuplot plot) for bench/lm_claims.sh (docs/lm.md, last section).

Usage: lm_claims_table.py OUTDIR SEQ SEED... -- MIXER...
Reads OUTDIR/<mixer>-s<seed>/metrics.jsonl (val_bpb at each evaluation), the run's config for
batch x seq (tokens per step), model.safetensors' header (parameters), the .log (wall time) and
OUTDIR/<mixer>-s<seed>.eval<L> (eval --data at L = 1x, 4x, 16x SEQ). Prints markdown.
Standard library only."""
import json, os, re, struct, subprocess, sys


def params(run):
    with open(os.path.join(run, "model.safetensors"), "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
    total = 0
    for k, v in hdr.items():
        if k == "__metadata__":
            continue
        p = 1
        for s in v["shape"]:
            p *= s
        total += p
    return total


def curve(run, tokens_per_step):
    pts = []
    with open(os.path.join(run, "metrics.jsonl")) as f:
        for line in f:
            m = json.loads(line)
            if "val_bpb" in m:
                pts.append((m["step"] * tokens_per_step, m["val_bpb"], m["val_loss"]))
    return pts


def tokens_to_reach(pts, target):
    """Tokens at which the curve first reaches target bpb (linear interpolation between evals)."""
    prev = None
    for t, b, _ in pts:
        if b <= target:
            if prev is None:
                return t
            t0, b0 = prev
            return t0 + (t - t0) * (b0 - target) / (b0 - b) if b0 != b else t
        prev = (t, b)
    return None


def read_eval(path):
    try:
        txt = open(path).read()
    except OSError:
        return None
    m = re.search(r"^loss: ([0-9.]+)", txt, re.M)
    b = re.search(r"^bits_per_byte: ([0-9.]+)", txt, re.M)
    return (float(m.group(1)), float(b.group(1))) if m and b else None


def wall(log):
    try:
        m = re.search(r"wall_s ([0-9.]+)", open(log).read())
        return float(m.group(1)) if m else None
    except OSError:
        return None


def main():
    argv = sys.argv[1:]
    sep = argv.index("--")
    out, seq, seeds, mixers = argv[0], int(argv[1]), argv[2:sep], argv[sep + 1:]
    runs = {}
    for mx in mixers:
        for s in seeds:
            run = os.path.join(out, f"{mx}-s{s}")
            if not os.path.exists(os.path.join(run, "metrics.jsonl")):
                continue
            cfg = open(run + ".cmd").read().split()
            batch = int(cfg[cfg.index("--batch") + 1])
            tps = batch * int(cfg[cfg.index("--seq-len") + 1])
            runs[(mx, s)] = dict(pts=curve(run, tps), params=params(run), wall=wall(run + ".log"),
                                 evals={L: read_eval(f"{run}.eval{L}") for L in (seq, 4 * seq, 16 * seq)})
    if not runs:
        print("no finished runs in", out)
        return
    print("### Validation bits per byte against tokens seen\n")
    for s in seeds:
        have = [mx for mx in mixers if (mx, s) in runs]
        if not have:
            continue
        print(f"seed {s}; parameters: " + ", ".join(f"{mx} {runs[(mx, s)]['params'] / 1e6:.3f} M" for mx in have)
              + "; wall (training incl. evaluations): "
              + ", ".join(f"{mx} {runs[(mx, s)]['wall']:.0f} s" for mx in have if runs[(mx, s)]['wall']) + "\n")
        print("| tokens seen | " + " | ".join(have) + " |")
        print("|---:|" + "---:|" * len(have))
        toks = sorted({t for mx in have for t, _, _ in runs[(mx, s)]["pts"]})
        for t in toks:
            row = []
            for mx in have:
                v = [b for tt, b, _ in runs[(mx, s)]["pts"] if tt == t]
                row.append(f"{v[0]:.4f}" if v else "")
            print(f"| {t / 1e6:.3f} M | " + " | ".join(row) + " |")
        print()
        if "longhorn" in have:
            lh = runs[("longhorn", s)]["pts"]
            for ref in have:
                if ref == "longhorn":
                    continue
                rp = runs[(ref, s)]["pts"]
                t_ref, b_ref = rp[-1][0], rp[-1][1]
                t_lh = tokens_to_reach(lh, b_ref)
                if t_lh is None:
                    print(f"- Longhorn does not reach {ref}'s final {b_ref:.4f} bpb within {lh[-1][0] / 1e6:.3f} M tokens"
                          f" (Longhorn ends at {lh[-1][1]:.4f}).")
                else:
                    print(f"- Longhorn reaches {ref}'s final {b_ref:.4f} bpb ({t_ref / 1e6:.3f} M tokens) after "
                          f"{t_lh / 1e6:.3f} M tokens: {t_ref / t_lh:.2f}x the sample efficiency.")
                t_back = tokens_to_reach(rp, lh[-1][1])
                if t_back is not None and t_lh is None:
                    print(f"  {ref} reaches Longhorn's final {lh[-1][1]:.4f} bpb after {t_back / 1e6:.3f} M tokens: "
                          f"Longhorn's sample efficiency relative to {ref} is {t_back / lh[-1][0]:.2f}x.")
            print()
    print(f"### Validation loss (nats per token; byte tokens) at 1x, 4x, 16x the training length {seq}\n")
    lens = (seq, 4 * seq, 16 * seq)
    print("| mixer | seed | " + " | ".join(f"L = {L}" for L in lens) + f" | {16 * seq} − {seq} |")
    print("|---|---|" + "---:|" * (len(lens) + 1))
    for (mx, s), r in runs.items():
        ev = [r["evals"][L] for L in lens]
        cells = [f"{e[0]:.4f}" if e else "" for e in ev]
        d = f"{ev[2][0] - ev[0][0]:+.4f}" if ev[0] and ev[2] else ""
        print(f"| {mx} | {s} | " + " | ".join(cells) + f" | {d} |")
    print()
    plot(out, seeds[0], [mx for mx in mixers if (mx, seeds[0]) in runs], runs)


def plot(out, seed, have, runs):
    """bpb against tokens seen, one line per mixer: OUTDIR/bpb_curves.png (needs gnuplot)."""
    dat = os.path.join(out, "bpb_curves.dat")
    with open(dat, "w") as f:
        for mx in have:
            f.write(f'"{mx}"\n')
            for t, b, _ in runs[(mx, seed)]["pts"]:
                f.write(f"{t / 1e6:.4f} {b:.5f}\n")
            f.write("\n\n")
    gp = os.path.join(out, "bpb_curves.gp")
    with open(gp, "w") as f:
        f.write(f"""set terminal pngcairo size 800,500 noenhanced
set output '{os.path.join(out, 'bpb_curves.png')}'
set xlabel 'training tokens seen (millions)'
set ylabel 'validation bits per byte'
set title 'Jargon File, bytes, d_model 128, 4 layers, seq 256 (bench/lm_claims.sh, seed {seed})'
set key top right
set grid
plot for [i=0:{len(have) - 1}] '{dat}' index i using 1:2 with linespoints title columnheader(1)
""")
    try:
        subprocess.run(["gnuplot", gp], check=True, capture_output=True)
        print(f"plot: {os.path.join(out, 'bpb_curves.png')}")
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"plot: not drawn ({e})")


if __name__ == "__main__":
    main()
