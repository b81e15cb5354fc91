"""Evaluate Megatron-core checkpoints (``--ckpt-format torch_dist``) with a CODMonitor.

Megatron-LM saves ``<save>/iter_<N:07d>`` as a torch Distributed Checkpoint (DCP)
directory. Its tensor names and shapes are not HF's, so this file defines the name
mapping for a Llama-style Megatron GPT (RMSNorm, SwiGLU, no biases, rotary on the two
halves of each head as HF, which is Megatron's default): :func:`megatron_gpt_to_hf`.
The evaluator config names it by its ``'module:function'`` path, which every
evaluation worker imports (a spawned worker gets this process's ``sys.path``). To use
a short name in-process instead: ``register_dcp_mapping("megatron_gpt",
megatron_gpt_to_hf)``.

Two lines in Megatron-LM's ``train`` (``megatron/training/training.py``)::

    monitor = make_monitor(ladder, eval_sets, hf_config_dir, out_dir)   # None off rank 0
    ...
    save_checkpoint_and_time(iteration, model, optimizer, opt_param_scheduler, ...)
    after_save(monitor, iteration, save_dir=args.save,
               tokens=args.consumed_train_samples * args.seq_length)

With ``--async-save`` call ``after_save`` once the save is finalized
(``maybe_finalize_async_save``): DCP writes ``.metadata`` last, and a directory
without it is not handed over. Megatron is not needed to import this file:
``tests/evaluators/test_dcp.py`` checks the mapping on DCP directories written by torch.
"""

from __future__ import annotations

import logging
import os

#: The evaluator config names the mapping by path: importable in every worker.
MAPPING = "megatron_hook:megatron_gpt_to_hf"


def megatron_gpt_to_hf(state, config) -> dict:
    """HF Llama weights from a Megatron-core GPT state dict (a DCP mapping).

    Parameters
    ----------
    state : mapping of str to tensor
        The checkpoint's tensors by flat name (a ``DCPStateDict``: read on access).
    config : transformers.LlamaConfig
        The HF config of the trained model; ``vocab_size`` may be below Megatron's
        padded vocabulary (the padding rows are dropped).

    Returns
    -------
    dict
        HF name -> tensor.

    Raises
    ------
    KeyError
        A tensor the model needs is missing.

    Notes
    -----
    Layers are read in either layout Megatron writes: one tensor per layer
    (``decoder.layers.{i}.<name>``) or, for homogeneous layers (the default), one
    tensor ``decoder.layers.<name>`` with a leading layer axis. ``linear_qkv`` holds,
    per key/value head group, the group's query heads, then its key head, then its
    value head; ``linear_fc1`` holds the gate projection, then the up projection.
    Layer norms are Transformer Engine's fused ``layer_norm_weight`` or the local
    spec's ``input_layernorm`` / ``pre_mlp_layernorm``.
    """
    n_q = config.num_attention_heads
    n_kv = getattr(config, "num_key_value_heads", None) or n_q
    d = getattr(config, "head_dim", None) or config.hidden_size // n_q
    per_group = n_q // n_kv

    def layer(i, *names):
        for name in names:
            if f"decoder.layers.{i}.{name}" in state:
                return state[f"decoder.layers.{i}.{name}"]
            if f"decoder.layers.{name}" in state:
                return state[f"decoder.layers.{name}"][i]
        raise KeyError(f"decoder.layers.{i}.{names[0]}")

    vocab = config.vocab_size
    out = {"model.embed_tokens.weight": state["embedding.word_embeddings.weight"][:vocab],
           "model.norm.weight": state["decoder.final_layernorm.weight"]}
    if "output_layer.weight" in state:
        out["lm_head.weight"] = state["output_layer.weight"][:vocab]
    elif not getattr(config, "tie_word_embeddings", False):
        raise KeyError("output_layer.weight")
    for i in range(config.num_hidden_layers):
        p = f"model.layers.{i}."
        qkv = layer(i, "self_attention.linear_qkv.weight")
        q, k, v = qkv.reshape(n_kv, (per_group + 2) * d, -1).split([per_group * d, d, d], dim=1)
        out[p + "self_attn.q_proj.weight"] = q.reshape(n_q * d, -1)
        out[p + "self_attn.k_proj.weight"] = k.reshape(n_kv * d, -1)
        out[p + "self_attn.v_proj.weight"] = v.reshape(n_kv * d, -1)
        out[p + "self_attn.o_proj.weight"] = layer(i, "self_attention.linear_proj.weight")
        gate, up = layer(i, "mlp.linear_fc1.weight").chunk(2, dim=0)
        out[p + "mlp.gate_proj.weight"] = gate
        out[p + "mlp.up_proj.weight"] = up
        out[p + "mlp.down_proj.weight"] = layer(i, "mlp.linear_fc2.weight")
        out[p + "input_layernorm.weight"] = layer(
            i, "self_attention.linear_qkv.layer_norm_weight", "input_layernorm.weight")
        out[p + "post_attention_layernorm.weight"] = layer(
            i, "mlp.linear_fc1.layer_norm_weight", "pre_mlp_layernorm.weight")
    return out


def evaluator_config(hf_config_dir: str) -> dict:
    """Exact-mode HF evaluation of Megatron DCP checkpoints through :func:`megatron_gpt_to_hf`."""
    return {"backend": "hf", "mode": "exact", "checkpoint_format": "dcp",
            "dcp_mapping": MAPPING, "config_dir": hf_config_dir}


def global_rank() -> int:
    """This process's global rank (0 without torch.distributed)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", "0"))


def make_monitor(ladder, eval_sets, hf_config_dir: str, out_dir: str, **kwargs):
    """The run's CODMonitor on global rank 0, ``None`` on the other ranks."""
    if global_rank() != 0:
        return None
    from cod_monitor.monitor import CODMonitor

    return CODMonitor(ladder, eval_sets, evaluator_config(hf_config_dir), out_dir=out_dir, **kwargs)


def after_save(monitor, iteration: int, *, save_dir: str, tokens: float | None = None) -> None:
    """Call on every rank after Megatron saved iteration `iteration`; returns at once."""
    if monitor is None:
        return
    path = os.path.join(save_dir, f"iter_{iteration:07d}")
    if not os.path.isfile(os.path.join(path, ".metadata")):  # DCP writes it last
        logging.getLogger(__name__).warning("%s is not a complete DCP checkpoint; not evaluated", path)
        return
    monitor.on_checkpoint(iteration, path=path, tokens=tokens)
