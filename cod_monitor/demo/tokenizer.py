"""A character-level tokenizer for the demo tasks, built locally (no hub).

One token per character of :data:`ALPHABET`, plus ``<pad>``, ``<unk>`` and
``<eos>``. It is a ``tokenizers`` BPE model with no merges (so every character is
its own token, with no pre-tokenizer and no added BOS/EOS), saved as
``tokenizer.json`` + ``tokenizer_config.json``: ``AutoTokenizer.from_pretrained(dir)``
loads it as a ``PreTrainedTokenizerFast`` and vLLM can load it too.

``tokenizer(prompt)["input_ids"]`` is exactly one id per character, so the
teacher-forced answer probability of ``prompt + answer + "\\n"`` is well defined.
"""

from __future__ import annotations

import string
from pathlib import Path

__all__ = ["ALPHABET", "SPECIAL_TOKENS", "build_tokenizer", "save_tokenizer", "encode_fast"]

#: Every character the demo tasks use (digits, lowercase letters, symbols, space, newline).
ALPHABET = string.digits + string.ascii_lowercase + "+-*%=:?#,;.()<>|_ \n"
#: Special tokens, with ids 0, 1, 2.
SPECIAL_TOKENS = ("<pad>", "<unk>", "<eos>")


def _vocab() -> dict[str, int]:
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    for ch in ALPHABET:
        vocab[ch] = len(vocab)
    return vocab


def build_tokenizer():
    """The demo tokenizer as a ``transformers.PreTrainedTokenizerFast``.

    Returns
    -------
    transformers.PreTrainedTokenizerFast
        ``pad_token='<pad>'``, ``unk_token='<unk>'``, ``eos_token='<eos>'``; no BOS;
        nothing added around encoded text; ``model_max_length`` 1024.

    Examples
    --------
    >>> tok = build_tokenizer()  # doctest: +SKIP
    >>> tok("12+3=")["input_ids"] == [tok.convert_tokens_to_ids(c) for c in "12+3="]  # doctest: +SKIP
    True
    """
    from tokenizers import Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE(vocab=_vocab(), merges=[], unk_token="<unk>"))
    core.add_special_tokens(list(SPECIAL_TOKENS))
    core.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token="<pad>",
        unk_token="<unk>",
        eos_token="<eos>",
        model_max_length=1024,
        clean_up_tokenization_spaces=False,
    )


def save_tokenizer(directory) -> Path:
    """Build the tokenizer and ``save_pretrained`` it into ``directory``; returns it."""
    directory = Path(directory)
    build_tokenizer().save_pretrained(directory)
    return directory


_TABLE: dict[str, int] | None = None


def encode_fast(text: str) -> list[int]:
    """Token ids of ``text`` without loading ``transformers`` (same ids as the tokenizer).

    Raises
    ------
    KeyError
        A character outside :data:`ALPHABET`.
    """
    global _TABLE
    if _TABLE is None:
        _TABLE = _vocab()
    table = _TABLE
    return [table[ch] for ch in text]
