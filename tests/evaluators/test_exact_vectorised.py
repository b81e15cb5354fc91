"""Exact mode's vectorised helpers against straightforward per-row computations (issue 17)."""

import math
import random

import numpy as np
import pytest
from numpy.testing import assert_allclose

from cod_monitor.evaluators.tokens import PlanArrays, TokenizedSample, exact_plan, sum_alternatives

torch = pytest.importorskip("torch")


def random_samples(n: int, seed: int) -> list:
    """Samples with 1-3 alternatives: some share the trunk's rows, some do not."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        prompt = [rng.randrange(3, 40) for _ in range(rng.randint(1, 9))]
        answer = tuple(rng.randrange(3, 40) for _ in range(rng.randint(0, 5)))
        alts = [answer + (rng.randrange(3, 40),)]  # answer + stop
        if rng.random() < 0.8:
            alts.append(answer + (2,))  # answer + EOS: read off the trunk's rows
        if rng.random() < 0.3:  # another segmentation: its own sequence
            alts.append(tuple(rng.randrange(3, 40) for _ in range(rng.randint(1, 6))))
        out.append(TokenizedSample(prompt, tuple(alts)))
    return out


def loop_sum_alternatives(conts, terms, cont_lp, lookup_lp):
    """The per-sample loop exact mode used before it was vectorised."""
    cum, offset = [], 0
    for c in conts:
        cum.append(np.concatenate([[0.0], np.cumsum(cont_lp[offset:offset + len(c)])]))
        offset += len(c)
    out = np.zeros(len(terms))
    for k, sample_terms in enumerate(terms):
        total = 0.0
        for s, upto, look in sample_terms:
            v = cum[s][upto] + (0.0 if look is None else lookup_lp[look])
            if np.isfinite(v):
                total += math.exp(v)
        out[k] = total
    return out


@pytest.mark.parametrize("share_rows", [True, False])
def test_sum_alternatives_matches_the_per_sample_loop(share_rows):
    samples = random_samples(300, seed=1)
    seqs, conts, lookups, terms = exact_plan(samples, share_rows=share_rows)
    rng = np.random.default_rng(0)
    cont_lp = np.log(rng.uniform(0.05, 1.0, sum(len(c) for c in conts)))
    cont_lp[rng.random(len(cont_lp)) < 0.05] = -np.inf  # tokens outside the nucleus
    cont_lp[7] = np.nan  # a broken row counts as 0, as before
    lookup_lp = np.log(rng.uniform(0.05, 1.0, len(lookups)))
    if len(lookup_lp):
        lookup_lp[rng.random(len(lookup_lp)) < 0.1] = -np.inf
    want = loop_sum_alternatives(conts, terms, cont_lp, lookup_lp)
    got = sum_alternatives(conts, terms, cont_lp, lookup_lp)
    assert_allclose(got, want, rtol=1e-15, atol=0)
    plan = PlanArrays.from_plan(conts, lookups, terms, seqs)
    assert_allclose(plan.probabilities(cont_lp, lookup_lp), want, rtol=1e-15, atol=0)
    assert plan.tokens.tolist() == [t for s in seqs for t in s]
    assert plan.seq_lengths.tolist() == [len(s) for s in seqs]
    assert (plan.lookup_seq.tolist(), plan.lookup_row.tolist(), plan.lookup_token.tolist()) == (
        [x[0] for x in lookups], [x[1] for x in lookups], [x[2] for x in lookups])


def test_pads_match_per_row_construction():
    from cod_monitor.evaluators.tokens import left_pad, right_pad

    rng = random.Random(2)
    seqs = [[rng.randrange(1, 50) for _ in range(rng.randint(0, 12))] for _ in range(40)] + [[7] * 12]
    width = max(len(s) for s in seqs)
    ids, mask = left_pad(seqs, pad_id=0)
    ids_r, lengths = right_pad(seqs, pad_id=-1)
    assert ids.dtype == mask.dtype == torch.long and ids_r.dtype == np.int64
    for r, s in enumerate(seqs):
        assert ids[r].tolist() == [0] * (width - len(s)) + s
        assert mask[r].tolist() == [0] * (width - len(s)) + [1] * len(s)
        assert ids_r[r].tolist() == s + [-1] * (width - len(s))
        assert lengths[r] == len(s)


@pytest.mark.parametrize("batch_size", [1, 7, 64])
def test_exact_batches_read_the_row_that_predicts_each_token(batch_size):
    from cod_monitor.evaluators.hf import _exact_batches

    samples = random_samples(150, seed=3)
    seqs, conts, lookups, terms = exact_plan(samples)
    batches, plan = _exact_batches(samples, batch_size, pad_id=0)
    n_cont = sum(len(c) for c in conts)
    # the targets every row is read for, in the evaluation's order: per sequence and token
    want = [(s, len(seqs[s]) - len(c) + j, tok) for s, c in enumerate(conts) for j, tok in enumerate(c)]
    want += [(s, len(seqs[s]) - len(conts[s]) + j, tok) for s, j, tok in lookups]
    seen = set()
    for b in batches:
        n_rows, width = b.ids.shape
        assert n_rows <= batch_size and 0 < b.keep <= width
        assert len(b.target_row) == len(b.target_token) == len(b.dest)
        for t, (row_i, tok, dest) in enumerate(zip(b.target_row, b.target_token, b.dest)):
            s, pos, want_tok = want[dest]
            r, window_row = divmod(int(b.rows[row_i]), b.keep)
            assert b.ids[r, :len(seqs[s])].tolist() == seqs[s]  # the row holds sequence s
            assert window_row + width - b.keep + 1 == pos  # the logits at pos - 1 predict pos
            assert tok == want_tok
            assert t >= len(b.rows) or b.ids[r, pos] == tok  # continuation tokens: the next token
            seen.add(int(dest))
    assert sorted(seen) == list(range(n_cont + len(lookups)))
    assert sum(len(b.dest) for b in batches) == n_cont + len(lookups)


def reference_logprobs(logits, temperature, top_p):
    """Temperature, then ``TopPLogitsWarper``'s argsort nucleus, then log-softmax."""
    scores = logits.to(torch.float32) / temperature if temperature != 1.0 else logits.to(torch.float32)
    if top_p < 1.0:
        sorted_logits, idx = torch.sort(scores, descending=False)
        remove = sorted_logits.softmax(-1).cumsum(-1) <= (1 - top_p)
        remove[..., -1:] = False
        scores = scores.masked_fill(remove.scatter(-1, idx, remove), -math.inf)
    return torch.log_softmax(scores, -1)


@pytest.mark.parametrize("temperature, top_p", [(1.0, 0.7), (0.8, 0.9), (1.3, 0.3), (1.0, 1e-9)])
def test_processed_logprobs_equals_the_argsort_nucleus(temperature, top_p):
    from cod_monitor.evaluators.policy import processed_logprobs

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(500, 64, generator=g) * 3
    assert torch.equal(processed_logprobs(logits, temperature, top_p), reference_logprobs(logits, temperature, top_p))
    three_d = logits.reshape(10, 50, 64)
    assert torch.equal(processed_logprobs(three_d, temperature, top_p),
                       reference_logprobs(three_d, temperature, top_p))
    assert torch.equal(processed_logprobs(logits[3], temperature, top_p),
                       reference_logprobs(logits[3], temperature, top_p))


def test_processed_logprobs_breaks_ties_at_the_cut_as_the_warper():
    from cod_monitor.evaluators.policy import processed_logprobs

    g = torch.Generator().manual_seed(1)
    # integer logits: many equal values, some on both sides of the nucleus' cut
    logits = torch.randint(0, 4, (400, 12), generator=g).float()
    logits[0] = 0.0  # all tied
    for top_p in (0.3, 0.5, 0.7, 0.9):
        assert torch.equal(processed_logprobs(logits, 1.0, top_p), reference_logprobs(logits, 1.0, top_p))
    assert torch.equal(processed_logprobs(logits[0], 1.0, 0.5), reference_logprobs(logits[0], 1.0, 0.5))


def brute_force_cost(lengths, batch_size, pass_cost):
    """Least padded tokens plus passes over every way to cut the sorted order."""
    from functools import lru_cache

    @lru_cache(maxsize=None)
    def best(stop):
        if stop == 0:
            return 0.0
        return min(best(first) + (stop - first) * lengths[stop - 1] + pass_cost
                   for first in range(max(0, stop - batch_size), stop))

    return best(len(lengths))


@pytest.mark.parametrize("seed", range(6))
def test_length_batches_cost_least(seed):
    from cod_monitor.evaluators.hf import _length_batches

    rng = np.random.default_rng(seed)
    lengths = np.sort(rng.integers(1, 30, rng.integers(1, 40)))
    batch_size, pass_cost = int(rng.integers(1, 12)), float(rng.choice([0, 5, 40, 1e6]))
    cuts = _length_batches(lengths, batch_size, pass_cost)
    assert cuts[0][0] == 0 and cuts[-1][1] == len(lengths)
    assert all(a < b <= a + batch_size for a, b in cuts) and all(b == c for (_, b), (c, _) in zip(cuts, cuts[1:]))
    cost = sum((b - a) * lengths[b - 1] + pass_cost for a, b in cuts)
    assert cost == pytest.approx(brute_force_cost(tuple(lengths), batch_size, pass_cost))
    if pass_cost == 1e6:  # passes dominate: as few as plain chunks
        assert len(cuts) == -(-len(lengths) // batch_size)
