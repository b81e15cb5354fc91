"""Tiny character-level Llama models built and trained locally (no hub, no downloads).

Used by the evaluator tests and by ``benchmarks/bench_evaluators.py``:

- :func:`build_char_tokenizer`: a ``tokenizers`` WordLevel model over single
  characters, saved as a ``PreTrainedTokenizerFast`` (``tokenizer.json``) that both
  HF ``AutoTokenizer`` and vLLM load from the directory;
- :func:`build_tiny_llama`: a random ``LlamaForCausalLM`` (head_dim 32, which the
  vLLM CPU kernels support);
- :func:`make_tasks`: exact-answer prompts of graded difficulty (copy, reverse,
  addition) with the answer followed by ``"\\n"``;
- :func:`train`: a few seconds of next-token training on task text, so answers get
  probabilities spread over (0, 1).
"""

from __future__ import annotations

import random
import time

CHARS = list("0123456789abcdefghijklmnopqrstuvwxyz+-=:.,?! \n")
SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"]
STOP = "\n"
N_SAMPLED = 400  # completions per prompt in the sampled-vs-exact agreement tests
ALPHA = 0.01  # family-wise false-alarm rate of the binomial agreement checks


def build_char_tokenizer():
    """A char-level ``PreTrainedTokenizerFast`` (pad 0, bos 1, eos 2, unk 3)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from tokenizers.processors import TemplateProcessing
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(SPECIALS + CHARS)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.post_processor = TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )


def build_tiny_llama(vocab_size: int, *, hidden: int = 64, layers: int = 2, heads: int = 2, seed: int = 0,
                     max_positions: int = 64):
    """A random Llama with head_dim = hidden / heads (32 by default)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=heads, max_position_embeddings=max_positions,
        pad_token_id=0, bos_token_id=1, eos_token_id=2, tie_word_embeddings=False,
    )
    return LlamaForCausalLM(config).float().eval()


def _rand_word(rng: random.Random, alphabet: str, lo: int, hi: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(lo, hi)))


def make_tasks(n: int, *, seed: int = 0, families=("copy", "reverse", "add"), max_len: int = 4) -> list:
    """`n` exact-answer records ``{id, prompt, answer, family}`` of graded difficulty."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        fam = families[i % len(families)]
        if fam == "copy":
            w = _rand_word(rng, "abcdefgh", 1, max_len)
            prompt, answer = f"c:{w}=", w
        elif fam == "reverse":
            w = _rand_word(rng, "abcdefgh", 1, max_len)
            prompt, answer = f"r:{w}=", w[::-1]
        elif fam == "add":
            x, y = rng.randint(0, 10 ** (max_len // 2) - 1), rng.randint(0, 10 ** (max_len // 2) - 1)
            prompt, answer = f"a:{x}+{y}=", str(x + y)
        else:
            raise ValueError(fam)
        out.append({"id": f"{fam}-{i}", "prompt": prompt, "answer": answer, "family": fam})
    return out


def train(model, tokenizer, *, seconds: float = 3.0, steps: int | None = None, lr: float = 3e-3,
          batch: int = 64, seed: int = 0, families=("copy", "reverse", "add"), max_len: int = 4,
          exclude: set | None = None) -> dict:
    """Train on fresh task lines ``"<s>{prompt}{answer}\\n</s>"`` for `seconds` (or `steps`).

    Prompts in `exclude` are never trained on. Returns ``{"steps", "seconds", "loss"}``.
    """
    import torch

    torch.manual_seed(seed)
    rng_seed = seed
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    t0, step, loss_v = time.perf_counter(), 0, float("nan")
    exclude = exclude or set()
    while True:
        if steps is not None and step >= steps:
            break
        if steps is None and time.perf_counter() - t0 >= seconds:
            break
        recs = [r for r in make_tasks(batch * 2, seed=10_000 + rng_seed + step, families=families, max_len=max_len)
                if r["prompt"] not in exclude][:batch]
        seqs = [tokenizer(r["prompt"] + r["answer"] + STOP)["input_ids"] + [tokenizer.eos_token_id] for r in recs]
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), tokenizer.pad_token_id, dtype=torch.long)
        for k, s in enumerate(seqs):
            ids[k, : len(s)] = torch.tensor(s)
        labels = ids.masked_fill(ids == tokenizer.pad_token_id, -100)
        mask = (ids != tokenizer.pad_token_id).long()
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss_v = float(loss.detach())
        step += 1
    model.eval()
    return {"steps": step, "seconds": time.perf_counter() - t0, "loss": loss_v}


def save_checkpoint(model, tokenizer, path) -> str:
    """``save_pretrained`` model (safetensors) and tokenizer into `path`."""
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return str(path)


def assert_binomial_agreement(exact, sampled, n, alpha=ALPHA):
    """Sampled counts are Binomial(n, exact) per sample (Bonferroni), and so is the mean."""
    import numpy as np
    from scipy import stats

    p = np.clip(np.asarray(exact, float), 1e-12, 1 - 1e-12)
    k = np.asarray(sampled.n_correct)
    pvals = np.array([stats.binomtest(int(ki), n, pi).pvalue for ki, pi in zip(k, p)])
    worst = int(np.argmin(pvals))
    assert pvals.min() > alpha / len(p), (
        f"sample {worst}: exact {p[worst]:.4f} vs sampled {k[worst]}/{n} (p-value {pvals[worst]:.2e})"
    )
    sigma = np.sqrt(float(np.sum(p * (1 - p))) / n) / len(p)
    z = stats.norm.isf(alpha / 2)
    assert abs(sampled.accuracy - float(np.mean(exact))) <= z * sigma
