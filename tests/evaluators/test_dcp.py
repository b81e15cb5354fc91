"""torch DCP checkpoints (torchtitan, Megatron-core ``torch_dist``) read by the HF evaluator.

Every DCP directory here is written by torch itself (``torch.distributed.checkpoint.save``
in one process, no process group): torchtitan and Megatron are not installable here
(FACTS.md). The torchtitan mapping is checked against a reimplementation of
torchtitan's forward pass (its interleaved rotary embedding), the Megatron mapping of
``examples/megatron_hook.py`` against tensors laid out as Megatron stores them.
"""

import os
import pickle
import py_compile
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from numpy.testing import assert_array_equal

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
dcp = pytest.importorskip("torch.distributed.checkpoint")

from cod_monitor.evaluators import HFEvaluator, VLLMEvaluator, make_evaluator  # noqa: E402
from cod_monitor.evaluators.base import (  # noqa: E402
    CheckpointError,
    CorruptCheckpointError,
    EvaluatorConfigError,
)
from cod_monitor.evaluators.dcp import (  # noqa: E402
    DCPStateDict,
    _MAPPINGS,
    dcp_mappings,
    dcp_to_hf_state_dict,
    hf_llama_to_torchtitan,
    is_dcp_directory,
    register_dcp_mapping,
    resolve_dcp_mapping,
    torchtitan_llama_to_hf,
)
from cod_monitor.evaluators.loading import load_hf_checkpoint  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


# --------------------------------------------------------------------------- helpers
TRIPPED = []


def _trip():
    TRIPPED.append(True)
    return "tripped"


class Tripwire:
    """An object whose unpickling runs code (as a malicious pickle would)."""

    def __reduce__(self):
        return _trip, ()


def save_dcp(state, path):
    """``torch.distributed.checkpoint.save`` in this one process."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dcp.save(state, checkpoint_id=str(path), no_dist=True)
    return str(path)


def torchtitan_checkpoint(model, path, *, drop=()):
    """What torchtitan's CheckpointManager writes: model weights under their torchtitan
    names at the top level, optimizer and scheduler state nested, and pickled objects
    (dataloader, train state)."""
    tt = {k: v.detach().clone() for k, v in hf_llama_to_torchtitan(model.state_dict(), model.config).items()
          if k not in drop}
    state = {**tt,
             "optimizer": {"state": {k: {"exp_avg": torch.zeros_like(v)} for k, v in list(tt.items())[:3]}},
             "lr_scheduler": {"last_epoch": torch.tensor(7)},
             "train_state": Tripwire(),
             "dataloader": {"dp_rank_0": Tripwire()}}
    return save_dcp(state, path)


def logits(model, ids):
    with torch.inference_mode():
        return model(input_ids=ids).logits


def gqa_llama(vocab_size, seed=0):
    """A random Llama with grouped-query attention (4 query heads, 2 key/value heads)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=vocab_size, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                         pad_token_id=0, bos_token_id=1, eos_token_id=2, tie_word_embeddings=False)
    return LlamaForCausalLM(config).float().eval()


def torchtitan_logits(tt, config, tokens):
    """torchtitan's Llama forward pass (``torchtitan/models/llama3/model/model.py``) on
    torchtitan weights: RMSNorm, rotary embedding on interleaved channel pairs via
    ``view_as_complex``, grouped-query attention, SwiGLU ``w2(silu(w1 x) * w3 x)``."""
    import torch.nn.functional as F

    n_q, n_kv = config.num_attention_heads, config.num_key_value_heads
    d = config.hidden_size // n_q
    theta = config.rope_parameters["rope_theta"]
    bsz, seqlen = tokens.shape
    freqs = 1.0 / (theta ** (torch.arange(0, d, 2)[: d // 2].float() / d))
    angles = torch.outer(torch.arange(seqlen).float(), freqs)
    freqs_cis = torch.polar(torch.ones_like(angles), angles)[None, :, None, :]

    def rms(x, w):
        return F.rms_norm(x, (x.shape[-1],), w, config.rms_norm_eps)

    def rope(x):
        xc = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
        return torch.view_as_real(xc * freqs_cis).flatten(3)

    h = tt["tok_embeddings.weight"][tokens]
    for i in range(config.num_hidden_layers):
        w = {k.split(f"layers.{i}.", 1)[1]: v for k, v in tt.items() if k.startswith(f"layers.{i}.")}
        x = rms(h, w["attention_norm.weight"])
        q = (x @ w["attention.wq.weight"].T).view(bsz, seqlen, n_q, d)
        k = (x @ w["attention.wk.weight"].T).view(bsz, seqlen, n_kv, d)
        v = (x @ w["attention.wv.weight"].T).view(bsz, seqlen, n_kv, d)
        q, k = rope(q), rope(k)
        k, v = (t.repeat_interleave(n_q // n_kv, dim=2) for t in (k, v))
        o = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                           is_causal=True)
        h = h + o.transpose(1, 2).reshape(bsz, seqlen, -1) @ w["attention.wo.weight"].T
        x = rms(h, w["ffn_norm.weight"])
        h = h + (F.silu(x @ w["feed_forward.w1.weight"].T) * (x @ w["feed_forward.w3.weight"].T)) \
            @ w["feed_forward.w2.weight"].T
    return rms(h, tt["norm.weight"]) @ tt["output.weight"].T


# --------------------------------------------------------------------------- torchtitan names
def test_the_torchtitan_mapping_reproduces_torchtitans_forward_pass():
    from transformers import LlamaForCausalLM

    hf = gqa_llama(vocab_size=50)
    with torch.no_grad():  # sharper attention, so that a wrong rotary layout shows
        for layer in hf.model.layers:
            layer.self_attn.q_proj.weight.mul_(8.0)
            layer.self_attn.k_proj.weight.mul_(8.0)
    tt = hf_llama_to_torchtitan(hf.state_dict(), hf.config)
    assert set(tt) >= {"tok_embeddings.weight", "layers.1.attention.wq.weight", "layers.0.feed_forward.w3.weight",
                       "layers.1.attention_norm.weight", "layers.1.ffn_norm.weight", "norm.weight",
                       "output.weight"}
    tokens = torch.randint(3, 50, (3, 11), generator=torch.Generator().manual_seed(1))
    expected = torchtitan_logits(tt, hf.config, tokens)          # torchtitan's own arithmetic

    mapped = LlamaForCausalLM(hf.config).float().eval()
    mapped.load_state_dict(torchtitan_llama_to_hf(tt, hf.config))
    torch.testing.assert_close(logits(mapped, tokens), expected, rtol=1e-5, atol=1e-5)

    # renaming alone (no q/k row permutation) gives another model
    plain = {f"model.layers.{k[7:]}" if k.startswith("layers.") else k: v for k, v in tt.items()}
    renamed = torchtitan_llama_to_hf(tt, hf.config)
    for name in list(renamed):
        if name.endswith(("q_proj.weight", "k_proj.weight")):
            i = name.split(".")[2]
            renamed[name] = plain[f"model.layers.{i}.attention.{'wq' if 'q_proj' in name else 'wk'}.weight"]
    mapped.load_state_dict(renamed)
    assert (logits(mapped, tokens) - expected).abs().max() > 0.05


def test_the_torchtitan_mapping_inverts_the_hf_to_torchtitan_one_exactly():
    hf = gqa_llama(vocab_size=50)
    sd = hf.state_dict()
    back = torchtitan_llama_to_hf(hf_llama_to_torchtitan(sd, hf.config), hf.config)
    assert back.keys() == sd.keys()
    assert all(torch.equal(back[k], sd[k]) for k in sd)
    # q/k rows are permuted, not copied
    tt = hf_llama_to_torchtitan(sd, hf.config)
    assert not torch.equal(tt["layers.0.attention.wq.weight"], sd["model.layers.0.self_attn.q_proj.weight"])
    assert torch.equal(tt["layers.0.attention.wv.weight"], sd["model.layers.0.self_attn.v_proj.weight"])


# --------------------------------------------------------------------------- through the evaluator
@pytest.fixture(scope="module")
def titan_dir(tiny_lm, tmp_path_factory):
    model, _ = tiny_lm
    return torchtitan_checkpoint(model, tmp_path_factory.mktemp("titan") / "step-200")


@pytest.fixture(scope="module")
def hf_exact(tiny_ckpt, tiny_eval_set):
    return HFEvaluator(mode="exact").evaluate(tiny_ckpt, tiny_eval_set)


def test_a_dcp_directory_is_read_lazily_and_without_unpickling_its_objects(titan_dir, tiny_lm):
    TRIPPED.clear()
    assert is_dcp_directory(titan_dir) and not is_dcp_directory(os.path.dirname(titan_dir))
    state = DCPStateDict(titan_dir)
    assert "tok_embeddings.weight" in state and "optimizer.state.tok_embeddings.weight.exp_avg" in state
    assert "train_state" not in state and "dataloader.dp_rank_0" not in state   # objects: not tensors
    assert state.shape("layers.1.attention.wq.weight") == (64, 64) and state.dtype("norm.weight") == torch.float32
    assert state._cache == {}                                    # nothing read yet
    assert torch.equal(state["norm.weight"], tiny_lm[0].model.norm.weight)
    assert list(state._cache) == ["norm.weight"]
    sd = dcp_to_hf_state_dict(titan_dir, tiny_lm[0].config)
    assert sd.keys() == tiny_lm[0].state_dict().keys()
    assert not TRIPPED
    # what the conversion avoids: torch's own DCP-to-torch.save path runs the pickles
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dcp_to_torch_save(titan_dir, os.path.join(os.path.dirname(titan_dir), "converted.pt"))
    assert TRIPPED
    TRIPPED.clear()


@pytest.mark.parametrize("how", ["config_dir", "files_in_snapshot", "auto_format"])
def test_a_torchtitan_checkpoint_evaluates_as_the_hf_model(how, titan_dir, tiny_ckpt, tiny_lm, tiny_eval_set,
                                                          hf_exact, tmp_path):
    TRIPPED.clear()
    path, config = titan_dir, {"mode": "exact", "checkpoint_format": "dcp", "dcp_mapping": "torchtitan_llama"}
    if how == "config_dir":
        config["config_dir"] = tiny_ckpt
    else:  # the HF files inside the DCP directory, as CheckpointConfig(config_dir=...) puts them in a snapshot
        path = tmp_path / "snapshot"
        path.mkdir()
        for src in (Path(titan_dir), Path(tiny_ckpt)):
            for f in src.iterdir():
                if not f.name.endswith(".safetensors"):
                    os.link(f, path / f.name)
        if how == "auto_format":
            config.pop("checkpoint_format")
    ev = make_evaluator({"backend": "hf", **config})
    result = ev.evaluate(str(path), tiny_eval_set)
    assert_array_equal(result.pass_rates, hf_exact.pass_rates)       # bit-identical
    assert result.meta["checkpoint"] == str(path)
    model, tokenizer, owned, _ = load_hf_checkpoint(str(path), **{k: v for k, v in config.items() if k != "mode"})
    ids = tokenizer(tiny_eval_set.prompts[:8], return_tensors="pt", padding=True)["input_ids"]
    assert owned and torch.equal(logits(model, ids), logits(tiny_lm[0], ids))
    assert not TRIPPED


def test_an_unknown_mapping_fails_at_construction_listing_the_registered_ones():
    with pytest.raises(EvaluatorConfigError, match=r"The 'dcp_mapping' parameter of HFEvaluator must be a "
                                                   r"registered DCP mapping name \(one of \['torchtitan_llama'"):
        make_evaluator({"backend": "hf", "dcp_mapping": "megatron"})
    with pytest.raises(EvaluatorConfigError, match="Importing it failed: ModuleNotFoundError"):
        HFEvaluator(dcp_mapping="no_such_module:to_hf")
    with pytest.raises(EvaluatorConfigError, match="'checkpoint_format' parameter of HFEvaluator"):
        HFEvaluator(checkpoint_format="torch_dist")
    with pytest.raises(EvaluatorConfigError, match="'config_dir' parameter of HFEvaluator"):
        HFEvaluator(config_dir=3)
    with pytest.raises(EvaluatorConfigError, match="'mapping' parameter of dcp_to_hf_state_dict"):
        dcp_to_hf_state_dict("unused", None, mapping="nope")


def test_a_missing_tensor_names_the_key_and_the_mapping(tiny_lm, tiny_ckpt, tiny_eval_set, tmp_path):
    path = torchtitan_checkpoint(tiny_lm[0], tmp_path / "step-1", drop={"layers.1.ffn_norm.weight"})
    ev = HFEvaluator(mode="exact", checkpoint_format="dcp", config_dir=tiny_ckpt)
    with pytest.raises(CheckpointError, match=r"has no tensor 'layers\.1\.ffn_norm\.weight', which the DCP "
                                              r"mapping 'torchtitan_llama' reads; its tensors' names start "
                                              r"with \['layers', 'lr_scheduler', 'norm', 'optimizer'"):
        ev.evaluate(path, tiny_eval_set)


def test_a_checkpoint_deeper_than_its_config_is_refused(tiny_lm, tmp_path):
    import copy

    config = copy.deepcopy(tiny_lm[0].config)
    config.num_hidden_layers = 1
    path = torchtitan_checkpoint(tiny_lm[0], tmp_path / "step-1")
    with pytest.raises(CheckpointError, match=r"layers up to layers\.1, but the HF config has num_hidden_layers=1"):
        dcp_to_hf_state_dict(path, config)


def test_dcp_errors_name_the_field_and_the_fix(titan_dir, tiny_ckpt, tiny_eval_set, tmp_path):
    with pytest.raises(EvaluatorConfigError, match=r"'config_dir' parameter of HFEvaluator\.evaluate must be "
                                                   r"a directory holding the model's HF config\.json .* set "
                                                   r"config_dir in the evaluator config"):
        HFEvaluator(mode="exact").evaluate(titan_dir, tiny_eval_set)
    with pytest.raises(CheckpointError, match=r"is not a torch DCP directory \(no \.metadata file\), but "
                                              r"checkpoint_format='dcp'"):
        HFEvaluator(mode="exact", checkpoint_format="dcp").evaluate(tiny_ckpt, tiny_eval_set)
    with pytest.raises(EvaluatorConfigError, match="torch DCP directory .* which vLLM cannot load"):
        VLLMEvaluator(mode="exact").evaluate(titan_dir, tiny_eval_set)
    # checkpoint_format='hf' never reads DCP: the directory is not a save_pretrained one,
    # and the error says what such a directory lacks
    with pytest.raises(CorruptCheckpointError, match=r"config\.json: missing") as info:
        HFEvaluator(mode="exact", checkpoint_format="hf").evaluate(titan_dir, tiny_eval_set)
    assert "DCP" not in str(info.value)


def test_metadata_naming_other_classes_is_refused_unread(tmp_path):
    TRIPPED.clear()
    (tmp_path / ".metadata").write_bytes(pickle.dumps(Tripwire()))
    with pytest.raises(CheckpointError, match=r"\.metadata names test_dcp\._trip, which is not DCP metadata"):
        DCPStateDict(tmp_path)
    assert not TRIPPED
    (tmp_path / ".metadata").write_bytes(b"not a pickle")
    with pytest.raises(CheckpointError, match="not a readable DCP metadata file"):
        DCPStateDict(tmp_path)


# --------------------------------------------------------------------------- a registered mapping: Megatron
def hf_to_megatron_gpt(sd, config, *, stacked, padded_vocab):
    """What Megatron-core stores for an HF Llama: ``linear_qkv`` grouped per key/value
    head ([its query heads; its key head; its value head]), ``linear_fc1`` = [gate; up],
    Transformer Engine's fused layer-norm weights, the vocabulary padded, and with
    ``stacked`` one tensor per name with a leading layer axis (homogeneous layers)."""
    n_q, n_kv, d = config.num_attention_heads, config.num_key_value_heads, config.head_dim
    hidden = config.hidden_size
    per_layer = {}
    for i in range(config.num_hidden_layers):
        p = f"model.layers.{i}."
        q = sd[p + "self_attn.q_proj.weight"].view(n_kv, n_q // n_kv * d, hidden)
        k = sd[p + "self_attn.k_proj.weight"].view(n_kv, d, hidden)
        v = sd[p + "self_attn.v_proj.weight"].view(n_kv, d, hidden)
        per_layer[i] = {
            "self_attention.linear_qkv.weight": torch.cat([q, k, v], dim=1).reshape(-1, hidden),
            "self_attention.linear_qkv.layer_norm_weight": sd[p + "input_layernorm.weight"],
            "self_attention.linear_proj.weight": sd[p + "self_attn.o_proj.weight"],
            "mlp.linear_fc1.weight": torch.cat([sd[p + "mlp.gate_proj.weight"], sd[p + "mlp.up_proj.weight"]]),
            "mlp.linear_fc1.layer_norm_weight": sd[p + "post_attention_layernorm.weight"],
            "mlp.linear_fc2.weight": sd[p + "mlp.down_proj.weight"],
        }

    def pad(w):
        return torch.cat([w, torch.full((padded_vocab - w.shape[0], w.shape[1]), 9.0)])

    out = {"embedding.word_embeddings.weight": pad(sd["model.embed_tokens.weight"]),
           "decoder.final_layernorm.weight": sd["model.norm.weight"],
           "output_layer.weight": pad(sd["lm_head.weight"])}
    for name in per_layer[0]:
        if stacked:
            out[f"decoder.layers.{name}"] = torch.stack([per_layer[i][name] for i in per_layer])
        else:
            out.update({f"decoder.layers.{i}.{name}": per_layer[i][name] for i in per_layer})
    return {k: v.clone() for k, v in out.items()}


@pytest.fixture
def megatron_hook(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    import megatron_hook

    yield megatron_hook
    _MAPPINGS.pop("megatron_gpt", None)


@pytest.mark.parametrize("stacked, spec", [(True, "registered"), (False, "path")])
def test_a_registered_megatron_mapping_splits_the_stacked_qkv(stacked, spec, megatron_hook, tiny_lm, tiny_eval_set,
                                                              tmp_path):
    from tinylm import save_checkpoint

    tokenizer = tiny_lm[1]
    model = gqa_llama(len(tokenizer), seed=3)
    hf_dir = save_checkpoint(model, tokenizer, tmp_path / "hf")
    state = hf_to_megatron_gpt(model.state_dict(), model.config, stacked=stacked, padded_vocab=64)
    # Transformer Engine's extra state: a pickled object, never read
    state["decoder.layers.self_attention.core_attention._extra_state"] = Tripwire()
    path = save_dcp(state, tmp_path / "iter_0000100")
    if spec == "registered":
        register_dcp_mapping("megatron_gpt", megatron_hook.megatron_gpt_to_hf)
        assert "megatron_gpt" in dcp_mappings()
        mapping = "megatron_gpt"
    else:
        mapping = megatron_hook.MAPPING                     # 'megatron_hook:megatron_gpt_to_hf'
        assert resolve_dcp_mapping(mapping) is megatron_hook.megatron_gpt_to_hf
    TRIPPED.clear()
    got = HFEvaluator(mode="exact", checkpoint_format="dcp", dcp_mapping=mapping, config_dir=hf_dir)
    expected = HFEvaluator(mode="exact").evaluate(hf_dir, tiny_eval_set)
    assert_array_equal(got.evaluate(path, tiny_eval_set).pass_rates, expected.pass_rates)
    sd = dcp_to_hf_state_dict(path, model.config, mapping)
    assert sd.keys() == model.state_dict().keys()
    assert all(torch.equal(sd[k], v) for k, v in model.state_dict().items())
    assert not TRIPPED
    with pytest.raises(CheckpointError, match=rf"has no tensor 'decoder\.layers\.0\.self_attention\.linear_qkv"
                                              rf"\.weight', which the DCP mapping '{mapping}' reads"):
        dcp_to_hf_state_dict(save_dcp({"embedding.word_embeddings.weight": state["embedding.word_embeddings.weight"],
                                       "decoder.final_layernorm.weight": state["decoder.final_layernorm.weight"],
                                       "output_layer.weight": state["output_layer.weight"]},
                                      tmp_path / "partial"), model.config, mapping)


def test_register_dcp_mapping_checks_its_arguments():
    for name in ("", "a:b", 3):
        with pytest.raises(EvaluatorConfigError, match="'name' parameter of register_dcp_mapping"):
            register_dcp_mapping(name, torchtitan_llama_to_hf)
    with pytest.raises(EvaluatorConfigError, match="'mapping' parameter of register_dcp_mapping"):
        register_dcp_mapping("x", 3)
    register_dcp_mapping("titan-by-path", "cod_monitor.evaluators.dcp:torchtitan_llama_to_hf")
    try:
        assert resolve_dcp_mapping("titan-by-path") is torchtitan_llama_to_hf
    finally:
        _MAPPINGS.pop("titan-by-path")


# --------------------------------------------------------------------------- the examples
def test_the_examples_compile_and_import_light(tmp_path):
    for name in ("torchtitan_hook.py", "megatron_hook.py"):
        py_compile.compile(str(EXAMPLES / name), cfile=str(tmp_path / f"{name}c"), doraise=True)
    code = ("import sys, json; sys.path.insert(0, sys.argv[1]); import torchtitan_hook, megatron_hook;"
            "print(json.dumps([m for m in ('torch', 'transformers', 'sklearn') if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code, str(EXAMPLES)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_readme_snippet_is_the_examples_code():
    readme = (EXAMPLES.parent / "README.md").read_text()
    section = readme.split("\n## torchtitan and Megatron (torch DCP)\n", 1)[1].split("\n## ", 1)[0]
    snippet = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    example = (EXAMPLES / "torchtitan_hook.py").read_text()
    for line in filter(None, (line.strip() for line in snippet.splitlines())):
        assert line.startswith("#") or line in example, line
    assert '"dcp_mapping": "torchtitan_llama", "config_dir": hf_config_dir}' in example


@pytest.mark.slow
def test_the_torchtitan_hook_feeds_a_real_monitor_and_worker(monkeypatch, tiny_lm, tiny_ckpt, tiny_eval_set,
                                                              tmp_path):
    """examples/torchtitan_hook.py end to end: a torchtitan-style loop saves DCP
    directories, rank 0's hook hands them to a real CODMonitor, whose spawned worker
    evaluates them with the HF evaluator (exact mode): the same pass rates as the HF
    model evaluated here."""
    from tinylm import train

    from cod_monitor.monitor import ForecastConfig, PoolConfig, RunGeometry, read_journal
    from cod_monitor.synthetic import synthetic_run

    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.setenv("RANK", "0")
    import torchtitan_hook

    run = synthetic_run(n_samples=len(tiny_eval_set), sample_ids=list(tiny_eval_set.ids), benchmark="tiny", seed=0)
    ladder = run.ladder.without_models([m.name for m in run.ladder.models_with_role("target")])
    eval_path = tmp_path / "tiny.jsonl"
    tiny_eval_set.to_jsonl(eval_path)
    folder = tmp_path / "outputs" / "checkpoint"
    monitor = torchtitan_hook.make_monitor(
        ladder, {"tiny": {"path": str(eval_path), "stop": tiny_eval_set.stop}}, tiny_ckpt,
        str(tmp_path / "cod"), forecast=ForecastConfig(n_bootstrap=0, refresh_interval=None),
        pool=PoolConfig(devices=["cpu"], cpu_threads=1), run=RunGeometry(tokens_per_step=2048.0))
    hook = torchtitan_hook.CODHook(monitor, str(folder))

    model, tokenizer = tiny_lm
    model = type(model)(model.config).eval()
    model.load_state_dict(tiny_lm[0].state_dict())
    expected = {}
    with torch.random.fork_rng():
        for step in (10, 20):
            train(model, tokenizer, steps=10, seed=step, exclude=set(tiny_eval_set.prompts))
            torchtitan_checkpoint(model, folder / f"step-{step}")       # checkpointer.save(step)
            hook.after_save(step, tokens=step * 2048.0)                  # the hook, on rank 0
            expected[step] = HFEvaluator(mode="exact", num_threads=1).evaluate(
                (model, tokenizer), tiny_eval_set).pass_rates
    summary = hook.close(timeout=300)
    results = {r["step"]: r["result"] for r in read_journal(tmp_path / "cod" / "journal.jsonl")
               if r["kind"] == "result"}
    assert sorted(results) == [10, 20], summary
    for step, result in results.items():
        assert result["meta"]["checkpoint"].endswith(f"step-{step:012d}")   # the monitor's snapshot
        assert_array_equal(result["pass_rates"], expected[step])          # bit-identical
    assert summary["benchmarks"]["tiny"]["observations"] == 2
