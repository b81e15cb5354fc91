"""Fixtures: a tiny char-level Llama trained for a few seconds, saved locally.

Nothing is downloaded: the tokenizer is built with ``tokenizers`` and the model is
a random ``LlamaForCausalLM`` trained on the copy/reverse/addition tasks of
:mod:`tinylm` (evaluation prompts excluded from training).
"""

import os

import pytest

from cod_monitor.evaluators import EvalSet

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TRAIN_STEPS = 200  # ~3 s on 2 cores; answer probabilities spread over (0, 1)


def _need_hf():
    for mod in ("torch", "transformers", "tokenizers"):
        pytest.importorskip(mod)


@pytest.fixture(scope="session")
def tiny_eval_set():
    """60 exact-answer prompts (copy, reverse, addition), answers followed by '\\n'."""
    from tinylm import STOP, make_tasks

    return EvalSet.from_records(make_tasks(60, seed=1), name="tiny", stop=STOP)


@pytest.fixture(scope="session")
def tiny_lm(tiny_eval_set):
    """(model, tokenizer): the tiny Llama after TRAIN_STEPS steps (deterministic)."""
    _need_hf()
    import torch
    from tinylm import build_char_tokenizer, build_tiny_llama, train

    with torch.random.fork_rng():
        tok = build_char_tokenizer()
        model = build_tiny_llama(len(tok), seed=0)
        train(model, tok, steps=TRAIN_STEPS, exclude=set(tiny_eval_set.prompts), seed=0)
    return model, tok


@pytest.fixture(scope="session")
def tiny_ckpt(tiny_lm, tmp_path_factory):
    """The trained tiny model saved with ``save_pretrained`` (safetensors + tokenizer.json)."""
    from tinylm import save_checkpoint

    model, tok = tiny_lm
    return save_checkpoint(model, tok, tmp_path_factory.mktemp("tiny_ckpt"))
