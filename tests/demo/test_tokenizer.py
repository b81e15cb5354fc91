"""The char-level demo tokenizer."""

import pytest

pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

from cod_monitor.demo.tasks import TaskGenerator  # noqa: E402
from cod_monitor.demo.tokenizer import (  # noqa: E402
    ALPHABET,
    SPECIAL_TOKENS,
    build_tokenizer,
    encode_fast,
    save_tokenizer,
)
from cod_monitor.demo.recipe import VOCAB_SIZE  # noqa: E402


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


def test_one_token_per_character_and_round_trip(tok):
    gen = TaskGenerator(seed=0, eval_size=120)
    text = gen.train_text(3000) + ALPHABET
    ids = tok(text)["input_ids"]
    assert len(ids) == len(text)
    assert ids == encode_fast(text)
    assert tok.decode(ids) == text
    for _, s in gen.eval_samples:
        assert len(tok(s.prompt)["input_ids"]) == len(s.prompt)


def test_vocabulary_fits_the_model(tok):
    assert len(tok) == len(SPECIAL_TOKENS) + len(ALPHABET) <= VOCAB_SIZE
    assert tok.pad_token_id == 0 and tok.eos_token == "<eos>" and tok.bos_token is None
    assert tok("z~")["input_ids"][1] == tok.unk_token_id


def test_saved_tokenizer_loads_with_autotokenizer(tmp_path, tok):
    from transformers import AutoTokenizer

    save_tokenizer(tmp_path / "tok")
    assert (tmp_path / "tok" / "tokenizer.json").is_file()
    loaded = AutoTokenizer.from_pretrained(tmp_path / "tok")
    text = "123+45=168\nr:abc=cba\n"
    assert loaded(text)["input_ids"] == tok(text)["input_ids"]
    assert loaded.decode(loaded(text)["input_ids"]) == text
    assert loaded.pad_token_id == tok.pad_token_id
