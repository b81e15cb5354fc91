"""Exact-mode throughput of the HF evaluator against the same thread's matmul rate (issue 17).

For each model shape (default: the demo ladder's six shapes and its d96x3 target, from
:mod:`cod_monitor.demo.recipe`, random weights: throughput does not depend on training)
one evaluator, ``HFEvaluator(mode="exact", temperature=1, top_p=0.7, batch_size=256,
num_threads=1)`` (the demo's :data:`~cod_monitor.demo.recipe.EVALUATOR`), scores the
demo evaluation set (``TaskGenerator(seed=0).eval_set()``, 1,200 samples) on an
in-memory model, as the demo's build and a training-loop monitor do. In one thread:

- **exact GFLOP/s**: the forward FLOPs the evaluation needs divided by its wall time
  (fastest of ``--reps`` evaluations, tokenisation cached by the evaluator as in a
  monitor). FLOPs needed, per teacher-forced sequence of ``L`` real tokens (padding
  not counted) whose continuation has ``c`` tokens::

      2 * P_layers * L                  linear layers (P_layers: weights of the
                                        nn.Linear modules of the decoder layers)
    + n_layers * 2 * H * hd * L * (L + 1)   causal attention, QK^T and AV
                                        (query i attends to i + 1 keys, 2 FLOPs each)
    + 2 * d * V * c                     output head on the rows that are scored

  Norms, rotary embeddings, activations and softmaxes are not counted (not matmul work).
- **matmul GFLOP/s**: ``torch.nn.functional.linear`` on the model's own layer shapes
  (the (in, out) of every nn.Linear of one decoder layer) with ``M = batch_size * mean
  sequence length`` rows, the matmuls a forward pass runs, looped over a window as long
  as the evaluation that follows it (the machine is shared: a burst of load hits both
  alike). **ratio**: the median, over all evaluations, of exact GFLOP/s divided by the
  matmul rate of the window just before it; **ratio (CPU s)**: the same per process CPU
  second (what time the process was not running does not count). A 1024^3 matmul is
  timed too, for reference.
- the share of the evaluation's wall time spent outside ``model.forward`` (forward
  hooks), the padding share of the tokens fed to the model, and process CPU seconds.

Run ``.venv/bin/python -m benchmarks.bench_exact_throughput`` (``--quick``: two shapes,
2 reps). Results are appended to ``benchmarks/results/bench_exact_throughput.json``
under ``--label``; ``--table`` prints every label's runs side by side (fastest
evaluation, best rates, median ratio over all of a label's runs). To
time another copy of the package (e.g. the code before a change), run this file by
path with ``PYTHONPATH`` pointing at that copy; ``cod_monitor_path`` in the JSON records
which copy ran. ``--profile d48x3`` prints a cProfile of one evaluation instead.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime
import json
import os
import platform
import pstats
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "results", "bench_exact_throughput.json")
DEFAULT_SHAPES = ("d32x1", "d32x2", "d32x3", "d48x2", "d48x3", "d64x2", "d96x3")


def parse_shape(text: str) -> tuple:
    """``'d96x3'`` -> ``(96, 3)`` (hidden size, layers)."""
    h, n = text.lstrip("d").split("x")
    return int(h), int(n)


def build(shape: str):
    """A randomly initialised demo-recipe Llama of `shape` (no download)."""
    from cod_monitor.demo.recipe import make_spec
    from cod_monitor.demo.train import build_model

    h, n = parse_shape(shape)
    model = build_model(make_spec(f"bench-{shape}", h, n))
    return model.eval()


def layer_linears(model) -> list:
    """(in, out) of every nn.Linear inside the decoder layers."""
    import torch

    out = []
    for layer in model.model.layers:
        out += [(m.in_features, m.out_features) for m in layer.modules() if isinstance(m, torch.nn.Linear)]
    return out


def needed_flops(model, samples) -> dict:
    """Forward FLOPs exact mode needs for `samples` (formula in the module docstring)."""
    from cod_monitor.evaluators.tokens import exact_plan

    cfg = model.config
    p_layers = sum(i * o for i, o in layer_linears(model))
    n_layers = cfg.num_hidden_layers
    attn_width = cfg.num_attention_heads * getattr(cfg, "head_dim", cfg.hidden_size // cfg.num_attention_heads)
    head = model.get_output_embeddings().weight.numel()
    seqs, conts, _, _ = exact_plan(samples)
    tokens = sum(len(s) for s in seqs)
    rows = sum(len(c) for c in conts)
    linear = 2 * p_layers * tokens
    attention = sum(n_layers * 2 * attn_width * len(s) * (len(s) + 1) for s in seqs)
    return {"linear": linear, "attention": attention, "head": 2 * head * rows,
            "total": linear + attention + 2 * head * rows, "tokens": tokens, "sequences": len(seqs),
            "scored_rows": rows, "p_layers": p_layers}


def matmul_rate(shapes: list, m: int, seconds: float = 0.0, reps: int = 1) -> tuple:
    """GFLOP/s of F.linear over `shapes` ((in, out) pairs) with `m` rows, per wall and CPU second.

    The shapes are run in turn, over and over for at least `seconds` (and `reps`
    rounds); the rates are means over that window, so that a window as long as the
    evaluation it is compared with sees the same kind of load.
    """
    import torch
    import torch.nn.functional as F

    xs = {k: torch.randn(m, k) for k in {i for i, _ in shapes}}
    ws = [(xs[i], torch.randn(o, i)) for i, o in shapes]
    flops = sum(2 * m * i * o for i, o in shapes)
    for x, w in ws:  # warm-up
        F.linear(x, w)
    rounds, t0, c0 = 0, time.perf_counter(), time.process_time()
    while rounds < reps or time.perf_counter() - t0 < seconds:
        for x, w in ws:
            F.linear(x, w)
        rounds += 1
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return rounds * flops / wall / 1e9, rounds * flops / max(cpu, 1e-9) / 1e9


class ForwardTimer:
    """Wall time inside ``model.forward`` and the tokens (padding included) fed to it, via hooks."""

    def __init__(self, model):
        self.seconds, self.fed, self._t0 = 0.0, 0, None
        self._hooks = [model.register_forward_pre_hook(self._pre, with_kwargs=True),
                       model.register_forward_hook(self._post)]

    def _pre(self, module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        self.fed += ids.numel()
        self._t0 = time.perf_counter()

    def _post(self, module, args, output):
        self.seconds += time.perf_counter() - self._t0

    def reset(self):
        self.seconds, self.fed = 0.0, 0

    def remove(self):
        for h in self._hooks:
            h.remove()


def bench_shape(shape: str, eval_set, tok, reps: int, batch_size: int) -> dict:
    """Exact GFLOP/s and the matmul rate of one model shape (see the module docstring)."""
    import numpy as np

    from cod_monitor.evaluators import HFEvaluator
    from cod_monitor.evaluators.tokens import eos_token_ids, tokenize_samples

    model = build(shape)
    samples = tokenize_samples(tok, eval_set.prompts, eval_set.answers, eval_set.stop, eos_token_ids(tok))
    flops = needed_flops(model, samples)
    m = int(round(batch_size * flops["tokens"] / flops["sequences"]))
    shapes = layer_linears(model)[: len(layer_linears(model)) // model.config.num_hidden_layers]
    ev = HFEvaluator(mode="exact", temperature=1.0, top_p=0.7, batch_size=batch_size, num_threads=1)
    ev.evaluate((model, tok), eval_set)  # warm-up: first forward pass, tokenisation cache
    timer = ForwardTimer(model)
    runs, rates, window = [], [], 0.2
    for _ in range(reps):
        # alternate, each matmul window as long as an evaluation: a burst of load on the
        # shared machine hits both measurements of a pair alike
        rates.append(matmul_rate(shapes, m, seconds=window))
        timer.reset()
        c0, t0 = time.process_time(), time.perf_counter()
        res = ev.evaluate((model, tok), eval_set)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        window = wall
        runs.append({"wall_s": wall, "cpu_s": cpu, "forward_s": timer.seconds, "fed_tokens": timer.fed})
    timer.remove()
    best = min(runs, key=lambda r: r["wall_s"])
    exact_rate = flops["total"] / best["wall_s"] / 1e9
    mm = max(q for q, _ in rates)
    # each evaluation against the matmul window just before it, per wall and CPU second
    pair = [flops["total"] / r["wall_s"] / 1e9 / q for r, (q, _) in zip(runs, rates)]
    pair_cpu = [flops["total"] / r["cpu_s"] / 1e9 / q for r, (_, q) in zip(runs, rates)]
    return {
        "shape": shape, "params": int(sum(p.numel() for p in model.parameters())),
        "flops": flops, "matmul_rows": m, "matmul_shapes": shapes,
        "wall_s": best["wall_s"], "cpu_s": min(r["cpu_s"] for r in runs),
        "outside_forward_share": 1 - best["forward_s"] / best["wall_s"],
        "padding_share": 1 - flops["tokens"] / max(best["fed_tokens"], 1),
        "exact_gflops": exact_rate, "matmul_gflops": mm, "ratio": exact_rate / mm,
        "ratio_median_of_pairs": float(np.median(pair)), "pair_ratios": pair, "pair_ratios_cpu": pair_cpu,
        "accuracy": float(res.accuracy), "pass_rate_sum": float(res.pass_rates.sum()), "runs": runs,
        "matmul_runs": rates,
    }


def profile(shape: str, eval_set, tok, batch_size: int, top: int = 30) -> None:
    """cProfile one evaluation (after a warm-up) and print the heaviest functions."""
    import torch

    from cod_monitor.evaluators import HFEvaluator

    torch.set_num_threads(1)
    model = build(shape)
    ev = HFEvaluator(mode="exact", temperature=1.0, top_p=0.7, batch_size=batch_size, num_threads=1)
    ev.evaluate((model, tok), eval_set)
    prof = cProfile.Profile()
    prof.enable()
    ev.evaluate((model, tok), eval_set)
    prof.disable()
    pstats.Stats(prof).sort_stats("tottime").print_stats(top)


def summarise(data: dict) -> dict:
    """Per (label, shape) over all runs: fastest evaluation, best matmul rate, median pair ratio."""
    import numpy as np

    out: dict = {}
    for run in data["runs"]:
        for row in run["rows"]:
            out.setdefault((run["label"], row["shape"]), []).append(row)
    summary = {}
    for key, rows in out.items():
        fastest = min(rows, key=lambda r: r["wall_s"])
        summary[key] = {
            "params": fastest["params"], "wall_s": fastest["wall_s"], "cpu_s": min(r["cpu_s"] for r in rows),
            "exact_gflops": max(r["exact_gflops"] for r in rows),
            "exact_gflops_cpu": max(r["flops"]["total"] / r["cpu_s"] / 1e9 for r in rows),
            "matmul_gflops": max(r["matmul_gflops"] for r in rows),
            "ratio": float(np.median([q for r in rows for q in r["pair_ratios"]])),
            "ratio_cpu": float(np.median([q for r in rows for q in r["pair_ratios_cpu"]])),
            "outside_forward_share": fastest["outside_forward_share"], "padding_share": fastest["padding_share"],
            "pass_rate_sum": fastest["pass_rate_sum"], "n_evaluations": sum(len(r["runs"]) for r in rows),
        }
    return summary


def print_table(data: dict) -> None:
    """Labels side by side: fastest evaluation, best rates, median ratio, over all runs."""
    labels = list(dict.fromkeys(r["label"] for r in data["runs"]))
    shapes = list(dict.fromkeys(row["shape"] for run in data["runs"] for row in run["rows"]))
    summary = summarise(data)
    head = ["model", "params"]
    for lab in labels:
        head += [f"{lab}: exact ms", "CPU ms", "exact GF/s", "matmul GF/s", "ratio", "ratio (CPU s)", "outside fwd",
                 "pad"]
    print(" | ".join(head))
    for shape in shapes:
        first = next(summary[(lab, shape)] for lab in labels if (lab, shape) in summary)
        cells = [shape, f"{first['params']:,}"]
        for lab in labels:
            r = summary.get((lab, shape))
            if r is None:
                cells += ["-"] * 8
                continue
            cells += [f"{1e3 * r['wall_s']:.1f}", f"{1e3 * r['cpu_s']:.1f}", f"{r['exact_gflops']:.1f}",
                      f"{r['matmul_gflops']:.1f}", f"{r['ratio']:.0%}", f"{r['ratio_cpu']:.0%}",
                      f"{r['outside_forward_share']:.0%}", f"{r['padding_share']:.0%}"]
        print(" | ".join(cells))
    if len(labels) == 2:
        a, b = labels
        for shape in shapes:
            ra, rb = summary.get((a, shape)), summary.get((b, shape))
            if ra and rb:
                print(f"{shape}: {b} / {a} wall {rb['wall_s'] / ra['wall_s']:.2f}, "
                      f"CPU {rb['cpu_s'] / ra['cpu_s']:.2f}, pass-rate sums {ra['pass_rate_sum']:.9g} vs {rb['pass_rate_sum']:.9g}")
    for run in data["runs"]:
        print(f"run {run['label']}: {run['date']}, load {run['load_avg_start'][0]:.2f} -> "
              f"{run['load_avg_end'][0]:.2f}, 1024^3 matmul {run['gemm_1024_gflops']:.1f} GF/s, "
              f"package {run['cod_monitor_path']}")


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shapes", nargs="+", default=list(DEFAULT_SHAPES))
    ap.add_argument("--reps", type=int, default=5, help="evaluations per shape; the fastest counts")
    ap.add_argument("--batch-size", type=int, default=256, help="the demo evaluator's")
    ap.add_argument("--label", default="current")
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--fresh", action="store_true", help="start a new JSON instead of appending")
    ap.add_argument("--table", action="store_true", help="only print the table of --out")
    ap.add_argument("--profile", metavar="SHAPE", help="cProfile one evaluation of SHAPE and exit")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    if args.table:
        with open(args.out) as fh:
            data = json.load(fh)
        print_table(data)
        return data
    if args.quick:
        args.shapes, args.reps = ["d32x1", "d96x3"], 2

    import numpy as np
    import torch

    import cod_monitor
    from cod_monitor.demo.tasks import TaskGenerator
    from cod_monitor.demo.tokenizer import build_tokenizer

    torch.set_num_threads(1)
    tok = build_tokenizer()
    eval_set = TaskGenerator(seed=0).eval_set()
    if args.profile:
        profile(args.profile, eval_set, tok, args.batch_size)
        return {}
    run = {"label": args.label, "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "load_avg_start": os.getloadavg(), "cod_monitor_path": os.path.dirname(cod_monitor.__file__),
           "argv": sys.argv[1:], "torch": torch.__version__, "python": platform.python_version(),
           "cpus": os.cpu_count(), "eval_samples": len(eval_set), "rows": []}
    run["gemm_1024_gflops"] = max(matmul_rate([(1024, 1024)], 1024, reps=1)[0] for _ in range(5))
    for shape in args.shapes:
        row = bench_shape(shape, eval_set, tok, args.reps, args.batch_size)
        run["rows"].append(row)
        print(f"{shape}: {row['params']:,} params, exact {1e3 * row['wall_s']:.1f} ms "
              f"({row['exact_gflops']:.1f} GF/s), matmul {row['matmul_gflops']:.1f} GF/s, "
              f"ratio: median of pairs {row['ratio_median_of_pairs']:.0%} (per CPU s "
              f"{np.median(row['pair_ratios_cpu']):.0%}), best / best {row['ratio']:.0%}; "
              f"outside forward {row['outside_forward_share']:.0%}, padding {row['padding_share']:.0%}", flush=True)
    run["load_avg_end"] = os.getloadavg()
    data = {"runs": []}
    if os.path.exists(args.out) and not args.fresh:
        with open(args.out) as fh:
            data = json.load(fh)
    data["runs"].append(run)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump(data, fh, indent=1)
    print_table(data)
    return data


if __name__ == "__main__":
    main()
