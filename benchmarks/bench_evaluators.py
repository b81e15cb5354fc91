"""Benchmark the evaluators: exact vs sampled pass rates, their cost, HF vs vLLM.

A tiny char-level Llama is trained (fixed number of steps, about a minute on 2 CPU
cores) on copy / reverse / addition tasks; 200 held-out prompts form the eval set.
For top_p 1.0 and 0.7 (temperature 1.0):

- a reference: HF sampled mode with 1,000 completions per prompt;
- HF ``exact`` mode and HF ``sampled`` mode with n=100;
- benchmark-level |delta| vs the reference (goal for exact: <= 0.005);
- per-sample: fraction of samples whose reference rate lies outside
  exact +- 3 sigma (sigma = sqrt(p(1-p)/1000)), next to the fraction a perfect
  exact value would give (computed from the binomial law);
- wall time of sampled n=100 / exact (goal >= 50x; fastest of 5 runs each), from
  the checkpoint directory (load included) and on an in-memory model (evaluation
  only, as a training-loop callback holding the model would run it);
- with ``.venv-vllm`` present: the same exact and sampled evaluations through
  ``VLLMEvaluator`` (engine in that venv, started per evaluation).

Run: ``.venv/bin/python -m benchmarks.bench_evaluators`` (``--quick`` for a smoke
run). Prints a table; writes ``benchmarks/results/bench_evaluators.json``. The
trained model is kept in ``benchmarks/results/bench_evaluators_ckpt`` and reused
while the training options are unchanged.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from scipy import stats  # noqa: E402

from cod_monitor.evaluators import EvalSet, HFEvaluator, VLLMEvaluator  # noqa: E402
from cod_monitor.evaluators.loading import load_hf_checkpoint  # noqa: E402


def outside_3sigma(exact: np.ndarray, ref_counts: np.ndarray, n_ref: int) -> tuple:
    """Observed and expected fraction of samples with the reference outside exact +- 3 sigma."""
    p = np.clip(exact, 0.0, 1.0)
    sigma = np.sqrt(p * (1 - p) / n_ref)
    lo, hi = (p - 3 * sigma) * n_ref, (p + 3 * sigma) * n_ref
    observed = float(np.mean((ref_counts < lo - 1e-9) | (ref_counts > hi + 1e-9)))
    # P(X < lo) + P(X > hi) for X ~ Binomial(n_ref, p): what a perfect exact value gives.
    below = stats.binom.cdf(np.ceil(lo - 1e-9) - 1, n_ref, p)
    above = stats.binom.sf(np.floor(hi + 1e-9), n_ref, p)
    expected = float(np.mean(np.where(sigma > 0, below + above, 0.0)))
    return observed, expected


def best_of(evaluator, ckpt, eval_set, reps: int):
    """Run `reps` identical evaluations; return the fastest and its CPU seconds.

    On a shared machine the fastest run is the least disturbed one; process CPU
    time is reported beside wall time because it depends less on other load.
    """
    runs = []
    for _ in range(reps):
        c0 = time.process_time()
        res = evaluator.evaluate(ckpt, eval_set)
        runs.append((res.wall_s, time.process_time() - c0, res))
    wall, _cpu, res = min(runs, key=lambda r: r[0])
    return res, min(r[1] for r in runs)


def build_model(args, eval_set, ckpt_dir):
    from tests.evaluators.tinylm import build_char_tokenizer, build_tiny_llama, save_checkpoint, train

    tok = build_char_tokenizer()
    model = build_tiny_llama(len(tok), hidden=args.hidden, layers=2, heads=args.hidden // 32, seed=0)
    info = train(model, tok, steps=args.train_steps, exclude=set(eval_set.prompts), seed=0,
                 max_len=args.max_len, lr=2e-3)
    save_checkpoint(model, tok, ckpt_dir)
    info["params"] = int(sum(p.numel() for p in model.parameters()))
    return info


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prompts", type=int, default=200)
    ap.add_argument("--train-steps", type=int, default=2500)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--max-len", type=int, default=7)
    ap.add_argument("--n-ref", type=int, default=1000)
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--reps", type=int, default=5, help="timed runs per mode; the fastest counts")
    ap.add_argument("--top-p", type=float, nargs="+", default=[1.0, 0.7])
    ap.add_argument("--vllm-python", default=os.path.join(ROOT, ".venv-vllm", "bin", "python"))
    ap.add_argument("--no-vllm", action="store_true")
    ap.add_argument("--quick", action="store_true", help="small smoke run")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "bench_evaluators.json"))
    ap.add_argument("--ckpt-dir", default=os.path.join(HERE, "results", "bench_evaluators_ckpt"),
                    help="where the trained model is kept; reused when its training config matches")
    args = ap.parse_args(argv)
    if args.quick:
        args.prompts, args.train_steps, args.n_ref, args.n = 40, 300, 200, 50

    from tests.evaluators.tinylm import STOP, make_tasks

    eval_set = EvalSet.from_records(make_tasks(args.prompts, seed=123, max_len=args.max_len), name="tiny-bench",
                                    stop=STOP)
    use_vllm = not args.no_vllm and os.path.exists(args.vllm_python)
    out = {"config": vars(args), "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                              "load_avg_start": os.getloadavg()}, "rows": []}
    ckpt = args.ckpt_dir + ("-quick" if args.quick else "")
    train_cfg = {"train_steps": args.train_steps, "hidden": args.hidden, "max_len": args.max_len,
                 "prompts": args.prompts}
    meta_path = os.path.join(ckpt, "bench_train.json")
    if os.path.exists(meta_path) and json.load(open(meta_path))["config"] == train_cfg:
        out["model"] = json.load(open(meta_path))["model"]
        out["model"]["reused"] = True
    else:
        t0 = time.perf_counter()
        out["model"] = build_model(args, eval_set, ckpt)
        out["model"]["train_wall_s"] = time.perf_counter() - t0
        with open(meta_path, "w") as fh:
            json.dump({"config": train_cfg, "model": out["model"]}, fh)
    model, tok, _, _ = load_hf_checkpoint(ckpt)  # in memory, as a training-loop callback holds it
    for top_p in args.top_p:
        kw = dict(temperature=1.0, top_p=top_p)
        HFEvaluator(mode="exact", **kw).evaluate(ckpt, eval_set)  # warm-up (first forward pass, file cache)
        ref = HFEvaluator(mode="sampled", n=args.n_ref, seed=12345, **kw).evaluate(ckpt, eval_set)
        # the same number of runs for both modes: fastest-of favours whichever gets more
        exact, exact_cpu = best_of(HFEvaluator(mode="exact", **kw), ckpt, eval_set, args.reps)
        samp, samp_cpu = best_of(HFEvaluator(mode="sampled", n=args.n, seed=7, **kw), ckpt, eval_set,
                                 args.reps)
        mem_exact, _ = best_of(HFEvaluator(mode="exact", **kw), (model, tok), eval_set, args.reps)
        mem_samp, _ = best_of(HFEvaluator(mode="sampled", n=args.n, seed=7, **kw), (model, tok), eval_set,
                              args.reps)
        obs, exp = outside_3sigma(exact.pass_rates, ref.n_correct, args.n_ref)
        row = {
            "top_p": top_p,
            "ref_accuracy": ref.accuracy, "ref_wall_s": ref.wall_s,
            "exact_accuracy": exact.accuracy, "exact_wall_s": exact.wall_s,
            "exact_abs_delta": abs(exact.accuracy - ref.accuracy),
            "exact_outside_3sigma": obs, "expected_outside_3sigma": exp,
            "exact_per_sample_corr": float(np.corrcoef(exact.pass_rates, ref.pass_rates)[0, 1]),
            f"sampled{args.n}_accuracy": samp.accuracy, f"sampled{args.n}_wall_s": samp.wall_s,
            f"sampled{args.n}_abs_delta": abs(samp.accuracy - ref.accuracy),
            "speedup_exact_vs_sampled": samp.wall_s / exact.wall_s,
            "exact_cpu_s": exact_cpu, f"sampled{args.n}_cpu_s": samp_cpu,
            "cpu_speedup_exact_vs_sampled": samp_cpu / exact_cpu,
            "in_memory_exact_wall_s": mem_exact.wall_s, f"in_memory_sampled{args.n}_wall_s": mem_samp.wall_s,
            "in_memory_speedup_exact_vs_sampled": mem_samp.wall_s / mem_exact.wall_s,
            "pass_rate_quantiles": [float(q) for q in np.quantile(ref.pass_rates, [0.1, 0.25, 0.5, 0.75, 0.9])],
        }
        if use_vllm:
            vkw = dict(python=args.vllm_python, dtype="float32", engine_kwargs={"max_model_len": 64}, **kw)
            v_exact = VLLMEvaluator(mode="exact", **vkw).evaluate(ckpt, eval_set)
            v_samp = VLLMEvaluator(mode="sampled", n=args.n, seed=7, **vkw).evaluate(ckpt, eval_set)
            row.update({
                "vllm_exact_max_abs_diff_vs_hf": float(np.max(np.abs(v_exact.pass_rates - exact.pass_rates))),
                "vllm_exact_wall_s": v_exact.wall_s, "vllm_exact_engine_start_s": v_exact.meta["engine_start_s"],
                "vllm_exact_run_s": v_exact.meta["run_s"],
                f"vllm_sampled{args.n}_accuracy": v_samp.accuracy,
                f"vllm_sampled{args.n}_abs_delta": abs(v_samp.accuracy - ref.accuracy),
                f"vllm_sampled{args.n}_wall_s": v_samp.wall_s,
                f"vllm_sampled{args.n}_engine_start_s": v_samp.meta["engine_start_s"],
                f"vllm_sampled{args.n}_run_s": v_samp.meta["run_s"],
            })
        out["rows"].append(row)
    out["machine"]["load_avg_end"] = os.getloadavg()
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump(out, fh, indent=2)
    print_table(out, args)
    return out


def print_table(out: dict, args) -> None:
    m = out["model"]
    reused = " (reused checkpoint)" if m.get("reused") else ""
    print(f"model: {m['params']:,} params, {m['steps']} steps in {m['train_wall_s']:.0f} s{reused} "
          f"(final loss {m['loss']:.3f}); "
          f"{args.prompts} prompts, T=1.0; reference = HF sampled n={args.n_ref}")
    n = args.n
    lines = [("metric", *[f"top_p={r['top_p']}" for r in out["rows"]])]

    def add(label, key, fmt):
        lines.append((label, *[(fmt.format(r[key]) if key in r else "-") for r in out["rows"]]))

    add("reference accuracy", "ref_accuracy", "{:.4f}")
    add("ref pass-rate quartiles", "pass_rate_quantiles", "")
    lines[-1] = ("pass-rate q10/q50/q90 (ref)",
                 *[f"{r['pass_rate_quantiles'][0]:.2f}/{r['pass_rate_quantiles'][2]:.2f}/{r['pass_rate_quantiles'][4]:.2f}"
                   for r in out["rows"]])
    add("exact accuracy", "exact_accuracy", "{:.4f}")
    add("|exact - ref| (goal <= 0.005)", "exact_abs_delta", "{:.4f}")
    add(f"|sampled{n} - ref|", f"sampled{n}_abs_delta", "{:.4f}")
    add("exact outside ref 3sigma (observed)", "exact_outside_3sigma", "{:.3f}")
    add("  expected if exact were perfect", "expected_outside_3sigma", "{:.3f}")
    add("per-sample corr(exact, ref)", "exact_per_sample_corr", "{:.4f}")
    add("HF exact wall, from disk (s)", "exact_wall_s", "{:.3f}")
    add(f"HF sampled n={n} wall, from disk (s)", f"sampled{n}_wall_s", "{:.2f}")
    add(f"  sampled{n} / exact, wall (goal >= 50x)", "speedup_exact_vs_sampled", "{:.0f}x")
    add(f"  sampled{n} / exact, CPU time", "cpu_speedup_exact_vs_sampled", "{:.0f}x")
    add("HF exact wall, in-memory model (s)", "in_memory_exact_wall_s", "{:.3f}")
    add(f"HF sampled n={n} wall, in-memory (s)", f"in_memory_sampled{n}_wall_s", "{:.2f}")
    add(f"  sampled{n} / exact, in-memory", "in_memory_speedup_exact_vs_sampled", "{:.0f}x")
    add(f"HF sampled n={args.n_ref} wall (s)", "ref_wall_s", "{:.1f}")
    add("vLLM exact max|diff| vs HF exact", "vllm_exact_max_abs_diff_vs_hf", "{:.1e}")
    add("vLLM exact wall (s)", "vllm_exact_wall_s", "{:.1f}")
    add("  of which engine start (s)", "vllm_exact_engine_start_s", "{:.1f}")
    add("  of which scoring (s)", "vllm_exact_run_s", "{:.2f}")
    add(f"vLLM sampled n={n} wall (s)", f"vllm_sampled{n}_wall_s", "{:.1f}")
    add("  of which engine start (s)", f"vllm_sampled{n}_engine_start_s", "{:.1f}")
    add("  of which generation (s)", f"vllm_sampled{n}_run_s", "{:.2f}")
    add(f"|vLLM sampled{n} - ref|", f"vllm_sampled{n}_abs_delta", "{:.4f}")
    w = [max(len(str(row[i])) for row in lines) for i in range(len(lines[0]))]
    for k, row in enumerate(lines):
        print("  ".join(str(c).ljust(w[i]) if i == 0 else str(c).rjust(w[i]) for i, c in enumerate(row)))
        if k == 0:
            print("  ".join("-" * x for x in w))
    la = out["machine"]
    print(f"load average start/end: {la['load_avg_start'][0]:.1f}/{la['load_avg_end'][0]:.1f} on {la['cpus']} cores; "
          f"JSON: {os.path.relpath(args.out, ROOT)}")


if __name__ == "__main__":
    main()
