import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

from tinylm import N_SAMPLED, assert_binomial_agreement  # noqa: E402

from cod_monitor.evaluators import EvalSet, ExactModeError, HFEvaluator  # noqa: E402
from cod_monitor.records import Checkpoint, EvalResult  # noqa: E402


def direct_probability(model, tok, prompt, answer, stop, temperature):
    """P(answer + stop) + P(answer + EOS) from one unpadded forward pass, no evaluator code."""
    ctx = tok(prompt)["input_ids"]
    ans = tok(answer, add_special_tokens=False)["input_ids"]
    stop_ids = tok(stop, add_special_tokens=False)["input_ids"]
    seq = ctx + ans + stop_ids
    with torch.no_grad():
        logits = model(torch.tensor([seq])).logits[0].double()
    lp = torch.log_softmax(logits / temperature, dim=-1)
    rows = [lp[len(ctx) - 1 + j] for j in range(len(ans) + len(stop_ids))]
    targets = ans + stop_ids
    log_ans = sum(float(rows[j][t]) for j, t in enumerate(targets[: len(ans)]))
    log_stop = sum(float(rows[len(ans) + j][t]) for j, t in enumerate(stop_ids))
    log_eos = float(rows[len(ans)][tok.eos_token_id])
    return math.exp(log_ans + log_stop) + math.exp(log_ans + log_eos)


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_exact_at_top_p_1_equals_direct_computation(tiny_lm, tiny_eval_set, temperature):
    model, tok = tiny_lm
    res = HFEvaluator(mode="exact", top_p=1.0, temperature=temperature).evaluate(tiny_lm, tiny_eval_set)
    direct = [direct_probability(model, tok, s.prompt, s.answer, tiny_eval_set.stop, temperature)
              for s in tiny_eval_set]
    assert isinstance(res, EvalResult) and res.mode == "exact"
    assert res.sample_ids == tiny_eval_set.ids
    assert res.n_samples is None and res.n_correct is None
    assert_allclose(res.pass_rates, direct, rtol=1e-5, atol=1e-9)
    # a trained model with a spread of difficulties, not all ~0 or ~1
    assert 0.1 < res.accuracy < 0.9 and res.pass_rates.min() < 0.05 and res.pass_rates.max() > 0.8


def test_exact_does_not_depend_on_batching(tiny_lm, tiny_eval_set):
    a = HFEvaluator(mode="exact", top_p=0.7, batch_size=1).evaluate(tiny_lm, tiny_eval_set)
    b = HFEvaluator(mode="exact", top_p=0.7, batch_size=64).evaluate(tiny_lm, tiny_eval_set)
    assert_allclose(a.pass_rates, b.pass_rates, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("temperature, top_p", [(1.0, 1.0), (1.0, 0.7), (0.8, 0.9)])
def test_exact_agrees_with_sampled_within_binomial_noise(tiny_ckpt, tiny_eval_set, temperature, top_p):
    kw = dict(temperature=temperature, top_p=top_p)
    exact = HFEvaluator(mode="exact", **kw).evaluate(tiny_ckpt, tiny_eval_set)
    sampled = HFEvaluator(mode="sampled", n=N_SAMPLED, seed=1, **kw).evaluate(tiny_ckpt, tiny_eval_set)
    assert sampled.mode == "sampled"
    assert (sampled.n_samples == N_SAMPLED).all()
    assert_allclose(sampled.pass_rates, sampled.n_correct / N_SAMPLED)
    assert_binomial_agreement(exact.pass_rates, sampled, N_SAMPLED)


def test_generation_budget_is_longest_answer_plus_stop(tiny_lm, tiny_eval_set):
    res = HFEvaluator(mode="sampled", n=4).evaluate(tiny_lm, tiny_eval_set)
    assert res.meta["max_new_tokens"] == max(len(a) for a in tiny_eval_set.answers) + 1
    short = HFEvaluator(mode="sampled", n=4, max_new_tokens=1).evaluate(tiny_lm, tiny_eval_set)
    assert short.meta["max_new_tokens"] == 1
    # one new token can only be right for one-character answers
    assert all(c == 0 for c, a in zip(short.n_correct, tiny_eval_set.answers) if len(a) > 1)


def test_sampled_is_deterministic_given_the_seed(tiny_lm, tiny_eval_set):
    rng_before = torch.random.get_rng_state()
    a = HFEvaluator(mode="sampled", n=50, seed=3).evaluate(tiny_lm, tiny_eval_set)
    b = HFEvaluator(mode="sampled", n=50, seed=3).evaluate(tiny_lm, tiny_eval_set)
    c = HFEvaluator(mode="sampled", n=50, seed=4).evaluate(tiny_lm, tiny_eval_set)
    assert (a.n_correct == b.n_correct).all()
    assert (a.n_correct != c.n_correct).any()
    assert torch.equal(torch.random.get_rng_state(), rng_before)  # caller's RNG untouched


def test_checkpoint_forms_agree(tiny_lm, tiny_ckpt, tiny_eval_set):
    model, _ = tiny_lm
    ev = HFEvaluator(mode="exact", top_p=0.7)
    mem = ev.evaluate(tiny_lm, tiny_eval_set)
    disk = ev.evaluate(tiny_ckpt, tiny_eval_set)
    record = ev.evaluate(Checkpoint(step=200, compute=1.0, path=tiny_ckpt), tiny_eval_set)
    sd = ev.evaluate({"state_dict": model.state_dict(), "config_dir": tiny_ckpt}, tiny_eval_set)
    for other in (disk, record, sd):
        assert_allclose(other.pass_rates, mem.pass_rates, rtol=1e-6, atol=1e-9)
    assert mem.meta["checkpoint"] == "<in-memory>" and disk.meta["checkpoint"] == tiny_ckpt
    s_mem = HFEvaluator(mode="sampled", n=20).evaluate(tiny_lm, tiny_eval_set)
    s_disk = HFEvaluator(mode="sampled", n=20).evaluate(tiny_ckpt, tiny_eval_set)
    assert (s_mem.n_correct == s_disk.n_correct).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("tied", [False, True])
def test_directory_load_matches_from_pretrained(tiny_lm, tmp_path, dtype, tied):
    from tinylm import build_tiny_llama, save_checkpoint
    from transformers import AutoModelForCausalLM

    from cod_monitor.evaluators.loading import _plain_safetensors_dir, load_hf_checkpoint

    _, tok = tiny_lm
    model = build_tiny_llama(len(tok), seed=3)
    if tied:
        model.config.tie_word_embeddings = True
        model.tie_weights()
    model.generation_config.eos_token_id = [2, 5]
    path = save_checkpoint(model.to(dtype), tok, tmp_path / "ckpt")
    assert _plain_safetensors_dir(path)  # the quick load, not from_pretrained
    want = AutoModelForCausalLM.from_pretrained(path)
    got, _, owned, label = load_hf_checkpoint(path)
    assert owned and label == path
    assert next(got.parameters()).dtype == next(want.parameters()).dtype == dtype
    sd_got, sd_want = got.state_dict(), want.state_dict()
    assert sorted(sd_got) == sorted(sd_want)
    for key in sd_want:
        assert torch.equal(sd_got[key], sd_want[key]), key
    assert (got.lm_head.weight is got.model.embed_tokens.weight) == tied
    assert got.generation_config.eos_token_id == [2, 5]
    assert not got.training


def test_directory_load_falls_back_to_from_pretrained_for_sharded_checkpoints(tiny_lm, tmp_path):
    from tinylm import save_checkpoint

    from cod_monitor.evaluators.loading import _plain_safetensors_dir, load_hf_checkpoint

    model, tok = tiny_lm
    path = save_checkpoint(model, tok, tmp_path / "ckpt")
    # what save_pretrained writes for a model above max_shard_size
    model.save_pretrained(tmp_path / "sharded", max_shard_size="100KB")
    tok.save_pretrained(tmp_path / "sharded")
    assert not _plain_safetensors_dir(str(tmp_path / "sharded"))
    sharded, _, _, _ = load_hf_checkpoint(str(tmp_path / "sharded"))
    plain, _, _, _ = load_hf_checkpoint(path)
    for key, value in plain.state_dict().items():
        assert torch.equal(sharded.state_dict()[key], value), key


def test_tokenization_is_reused_only_for_the_same_tokenizer_and_set(tiny_lm, tiny_ckpt, tiny_eval_set, tmp_path):
    import json
    import shutil

    ev = HFEvaluator(mode="exact", top_p=0.7)
    first = ev.evaluate(tiny_ckpt, tiny_eval_set)
    again = ev.evaluate(tiny_ckpt, tiny_eval_set)
    assert len(ev._token_cache) == 1
    assert_allclose(again.pass_rates, first.pass_rates, rtol=0, atol=0)
    # another checkpoint directory whose tokenizer maps two digits to each other's ids
    swapped = tmp_path / "swapped"
    shutil.copytree(tiny_ckpt, swapped)
    spec = json.loads((swapped / "tokenizer.json").read_text())
    vocab = spec["model"]["vocab"]
    vocab["1"], vocab["2"] = vocab["2"], vocab["1"]
    (swapped / "tokenizer.json").write_text(json.dumps(spec))
    cached = ev.evaluate(str(swapped), tiny_eval_set)
    fresh = HFEvaluator(mode="exact", top_p=0.7).evaluate(str(swapped), tiny_eval_set)
    assert len(ev._token_cache) == 2
    assert_allclose(cached.pass_rates, fresh.pass_rates, rtol=0, atol=0)
    assert not np.allclose(cached.pass_rates, first.pass_rates)  # the swap matters
    # in memory: keyed on the tokenizer object; another eval set is another entry
    ev.evaluate(tiny_lm, tiny_eval_set)
    ev.evaluate(tiny_lm, EvalSet(name="half", samples=tiny_eval_set.samples[:30], stop="\n"))
    assert len(ev._token_cache) == 4


def test_in_memory_model_keeps_its_training_mode(tiny_lm, tiny_eval_set):
    model, tok = tiny_lm
    model.train()
    try:
        HFEvaluator(mode="exact").evaluate(tiny_lm, tiny_eval_set)
        assert model.training
    finally:
        model.eval()


def test_exact_mode_rejects_non_exact_scorers_unless_forced(tiny_lm, tiny_eval_set):
    loose = EvalSet(name="loose", samples=tiny_eval_set.samples, scorer="normalized", stop="\n")
    with pytest.raises(ExactModeError, match="force_exact=True"):
        HFEvaluator(mode="exact").evaluate(tiny_lm, loose)
    forced = HFEvaluator(mode="exact", force_exact=True).evaluate(tiny_lm, loose)
    ref = HFEvaluator(mode="exact").evaluate(tiny_lm, tiny_eval_set)
    assert_allclose(forced.pass_rates, ref.pass_rates)


def test_stop_none_scores_answer_then_eos(tiny_lm, tiny_eval_set):
    model, tok = tiny_lm
    no_stop = EvalSet(name="eos", samples=tiny_eval_set.samples[:8], stop=None)
    res = HFEvaluator(mode="exact", top_p=1.0).evaluate(tiny_lm, no_stop)
    for s, got in zip(no_stop, res.pass_rates):
        seq = tok(s.prompt)["input_ids"] + tok(s.answer, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            lp = torch.log_softmax(model(torch.tensor([seq])).logits[0].double(), -1)
        n_ctx = len(seq) - len(s.answer)
        want = sum(float(lp[n_ctx - 1 + j, t]) for j, t in enumerate(seq[n_ctx:])) + float(lp[-1, tok.eos_token_id])
        assert got == pytest.approx(math.exp(want), rel=1e-5, abs=1e-12)


def test_missing_checkpoint_dir(tiny_eval_set, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        HFEvaluator(mode="exact").evaluate(str(tmp_path / "nope"), tiny_eval_set)


@pytest.mark.gpu
def test_cuda_matches_cpu(tiny_ckpt, tiny_eval_set):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    cpu = HFEvaluator(mode="exact", device="cpu").evaluate(tiny_ckpt, tiny_eval_set)
    gpu = HFEvaluator(mode="exact", device="cuda").evaluate(tiny_ckpt, tiny_eval_set)
    assert_allclose(gpu.pass_rates, cpu.pass_rates, rtol=1e-3, atol=1e-6)
    sampled = HFEvaluator(mode="sampled", n=N_SAMPLED, device="cuda").evaluate(tiny_ckpt, tiny_eval_set)
    assert_binomial_agreement(cpu.pass_rates, sampled, N_SAMPLED)


def direct_nucleus_probability(model, tok, prompt, answer, stop, temperature, top_p):
    """P(answer + stop) + P(answer + EOS) under HF's warpers, one unpadded sequence at a time."""
    from transformers.generation.logits_process import TemperatureLogitsWarper, TopPLogitsWarper

    ctx = tok(prompt)["input_ids"]
    ans = tok(answer, add_special_tokens=False)["input_ids"]
    stop_ids = tok(stop, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(torch.tensor([ctx + ans + stop_ids])).logits[0]
    total = {"stop": 0.0, "eos": 0.0}
    for end, tail in (("stop", stop_ids), ("eos", [tok.eos_token_id])):
        for j, t in enumerate(ans + tail):
            row = logits[len(ctx) - 1 + j][None, :].float()
            row = TopPLogitsWarper(top_p)(None, TemperatureLogitsWarper(temperature)(None, row))
            total[end] += float(torch.log_softmax(row, -1)[0, t])
    return math.exp(total["stop"]) + math.exp(total["eos"])


@pytest.mark.parametrize("batch_size", [None, 7])
def test_exact_nucleus_equals_direct_computation(tiny_lm, tiny_eval_set, batch_size):
    model, tok = tiny_lm
    res = HFEvaluator(mode="exact", top_p=0.7, temperature=0.9, batch_size=batch_size).evaluate(tiny_lm, tiny_eval_set)
    direct = [direct_nucleus_probability(model, tok, s.prompt, s.answer, tiny_eval_set.stop, 0.9, 0.7)
              for s in tiny_eval_set]
    assert_allclose(res.pass_rates, direct, rtol=1e-5, atol=1e-9)


def test_exact_runs_models_without_logits_to_keep(tiny_lm, tiny_eval_set):
    model, tok = tiny_lm

    class Plain(torch.nn.Module):
        """A causal LM whose forward takes the token ids only."""

        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        @property
        def device(self):
            return self.inner.device

        def forward(self, input_ids):
            return self.inner(input_ids=input_ids)

    ref = HFEvaluator(mode="exact", top_p=0.7).evaluate(tiny_lm, tiny_eval_set)
    plain = HFEvaluator(mode="exact", top_p=0.7).evaluate((Plain(model), tok), tiny_eval_set)
    assert_allclose(plain.pass_rates, ref.pass_rates, rtol=1e-6, atol=1e-9)
