"""The sampling policy's log-probabilities: the one implementation every backend uses."""

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from cod_monitor.evaluators.policy import nucleus_logprob_from_topk, processed_logprobs  # noqa: E402


def test_processed_logprobs_matches_hf_warpers():
    from transformers.generation.logits_process import TemperatureLogitsWarper, TopPLogitsWarper

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 50, generator=g) * 3
    for t, p in [(1.0, 1.0), (0.7, 1.0), (1.0, 0.7), (1.3, 0.5), (0.8, 0.95)]:
        ref = logits.clone()
        if t != 1.0:
            ref = TemperatureLogitsWarper(t)(None, ref)
        if p < 1.0:
            ref = TopPLogitsWarper(p)(None, ref)
        assert_allclose(processed_logprobs(logits, t, p).exp().numpy(), ref.softmax(-1).numpy(), atol=1e-7)


def test_nucleus_always_keeps_the_top_token():
    lp = processed_logprobs(torch.tensor([[5.0, 0.0, 0.0]]), top_p=0.01)
    assert_allclose(lp.exp().numpy(), [[1.0, 0.0, 0.0]])


def test_nucleus_from_topk_matches_full_vocabulary():
    g = torch.Generator().manual_seed(0)
    for top_p in (0.5, 0.7, 0.9):
        for _ in range(50):
            logits = torch.randn(40, generator=g) * 2.5
            raw = torch.log_softmax(logits, -1).double()
            full = processed_logprobs(logits, 1.0, top_p).double()
            order = torch.argsort(raw, descending=True)
            k = 8
            top = raw[order[:k]].numpy()
            for tok in order[:12].tolist():
                got = nucleus_logprob_from_topk(float(raw[tok]), top, top_p)
                if float(np.exp(top).sum()) < top_p:
                    assert got is None
                elif math.isinf(float(full[tok])):
                    assert got == -math.inf
                else:
                    assert got == pytest.approx(float(full[tok]), abs=1e-5)
