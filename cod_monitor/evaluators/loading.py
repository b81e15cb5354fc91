"""Loading a checkpoint for the HF backend, in every form :class:`HFEvaluator` accepts.

:func:`load_hf_checkpoint` takes a ``save_pretrained`` directory (or a
:class:`~cod_monitor.records.Checkpoint` with its path), a torch DCP directory
(torchtitan, Megatron-core ``torch_dist``; converted by a name mapping of
:mod:`~cod_monitor.evaluators.dcp`), an in-memory ``(model, tokenizer)`` pair, or
``{"state_dict": ..., "config_dir": path}``. torch and transformers are imported on
first use (:func:`require_hf` says how to install them when they are missing).
"""

from __future__ import annotations

import json
import os
from typing import Any

from cod_monitor.evaluators.base import (
    CheckpointError,
    CorruptCheckpointError,
    EvaluatorConfigError,
    checkpoint_location,
)
from cod_monitor.evaluators.dcp import dcp_to_hf_state_dict, is_dcp_directory
from cod_monitor.exceptions import MissingExtraError

__all__ = [
    "CHECKPOINT_FORMATS",
    "dcp_source",
    "load_hf_checkpoint",
    "require_hf",
    "resolve_dtype",
    "unreadable_file",
    "TOKENIZER_FILES",
    "WEIGHT_FILES",
]

#: What ``checkpoint_format`` may be: ``'auto'`` reads a directory with a ``.metadata``
#: file as torch DCP and any other as ``save_pretrained``; ``'hf'`` and ``'dcp'`` insist.
CHECKPOINT_FORMATS = ("auto", "hf", "dcp")


def require_hf() -> None:
    """Raise :class:`~cod_monitor.exceptions.MissingExtraError` unless torch and
    transformers are installed (nothing is imported)."""
    MissingExtraError.check("HFEvaluator", ("torch", "transformers"), "hf")


def resolve_dtype(dtype: Any, owner: str = "HFEvaluator") -> Any:
    """A torch dtype from a dtype, its name, ``'auto'`` or ``None`` (``'auto'`` for both).

    Raises
    ------
    EvaluatorConfigError
        A name that is not a torch dtype.
    """
    import torch

    if dtype is None or dtype == "auto":
        return "auto"
    if isinstance(dtype, str):
        value = getattr(torch, dtype, None)
        if not isinstance(value, torch.dtype):
            raise EvaluatorConfigError(owner, "dtype", "a torch dtype, its name or None", dtype)
        return value
    return dtype


def _plain_safetensors_dir(path: str) -> bool:
    """A single-file, unquantised safetensors checkpoint that the quick load can read."""
    if not (os.path.isfile(os.path.join(path, "model.safetensors"))
            and os.path.isfile(os.path.join(path, "config.json"))):
        return False
    try:
        with open(os.path.join(path, "config.json")) as fh:
            config = json.load(fh)
    except (OSError, ValueError):
        return False
    # quantised and remote-code models need from_pretrained's machinery
    return "quantization_config" not in config and "auto_map" not in config


#: Files of which a ``save_pretrained`` directory holds at least one, per part.
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json",
                   "vocab.txt", "spiece.model", "sentencepiece.bpe.model")
_SAVE_FIX = ("Save the model and its tokenizer with save_pretrained into the checkpoint "
             "directory, or give CheckpointConfig(config_dir=...) (the directory holding "
             "config.json and the tokenizer), which copies those files into every snapshot.")


def unreadable_file(path: str) -> CorruptCheckpointError | None:
    """The error for the first file of a ``save_pretrained`` directory that is unusable.

    Checks that ``config.json``, a weights file (:data:`WEIGHT_FILES`) and a tokenizer
    file (:data:`TOKENIZER_FILES`) are there, reads ``config.json`` as JSON and the
    header of every ``*.safetensors`` file (which also checks that the file holds every
    byte its header promises); reads no tensor.

    Parameters
    ----------
    path : str
        Checkpoint directory.

    Returns
    -------
    CorruptCheckpointError or None
        ``None`` when every file checked is usable.
    """
    names = set(os.listdir(path))
    config = os.path.join(path, "config.json")
    if "config.json" not in names:
        return CorruptCheckpointError(config, "missing", _SAVE_FIX)
    if not names & set(WEIGHT_FILES):
        return CorruptCheckpointError(
            path, f"a directory without weights (none of {', '.join(WEIGHT_FILES)})",
            "Give the directory the training run saved the model to, after its save finished.")
    if not names & set(TOKENIZER_FILES):
        return CorruptCheckpointError(
            path, f"a directory without a tokenizer (none of "
                  f"{', '.join(TOKENIZER_FILES)})", _SAVE_FIX)
    try:
        with open(config) as fh:
            json.load(fh)
    except ValueError as exc:  # OSError (a transient read error) is not corruption
        return CorruptCheckpointError(config, f"not valid JSON ({exc})")
    try:
        from safetensors import SafetensorError, safe_open
    except ImportError:  # pragma: no cover - transformers requires safetensors
        return None
    for name in sorted(names):
        if not name.endswith(".safetensors"):
            continue
        file = os.path.join(path, name)
        try:
            with safe_open(file, framework="np"):
                pass
        except SafetensorError as exc:
            return CorruptCheckpointError(file, f"truncated or corrupt ({type(exc).__name__}: "
                                                f"{exc})")
    return None


def dcp_source(checkpoint: Any, *, checkpoint_format: str = "auto", config_dir: Any = None,
               owner: str = "load_hf_checkpoint") -> tuple[str, str] | None:
    """Where a DCP checkpoint's tensors and its HF files are, or ``None`` for another form.

    Parameters
    ----------
    checkpoint : object
        What ``evaluate`` was given (a :class:`~cod_monitor.records.Checkpoint` is
        read as its path).
    checkpoint_format : {'auto', 'hf', 'dcp'}, default='auto'
        See :data:`CHECKPOINT_FORMATS`.
    config_dir : str or path-like, optional
        The directory with the HF ``config.json`` and tokenizer; ``None``: the DCP
        directory itself (e.g. filled in by ``CheckpointConfig(config_dir=...)`` when
        the monitor snapshots it).
    owner : str
        Named in the errors.

    Returns
    -------
    (dcp_dir, files_dir) or None
        ``None`` when the checkpoint is not read as DCP.

    Raises
    ------
    CheckpointError
        ``checkpoint_format='dcp'`` and the checkpoint is not a DCP directory.
    EvaluatorConfigError
        A DCP checkpoint and no ``config.json`` where the HF files should be.
    """
    checkpoint = checkpoint_location(checkpoint, owner)
    if checkpoint_format == "hf" or not isinstance(checkpoint, (str, os.PathLike)):
        return None
    path = os.fspath(checkpoint)
    if not os.path.isdir(path):
        return None  # the caller says the directory does not exist
    if not is_dcp_directory(path):
        if checkpoint_format == "dcp":
            raise CheckpointError(
                f"The checkpoint {path} is not a torch DCP directory (no .metadata file), but "
                "checkpoint_format='dcp'. Give the directory the framework saved (e.g. "
                "checkpoint/step-<N> for torchtitan, iter_<N> for Megatron), after the save has "
                "finished, or set checkpoint_format='auto'.")
        return None
    files = path if config_dir is None else os.fspath(config_dir)
    if not os.path.isfile(os.path.join(files, "config.json")):
        raise EvaluatorConfigError(
            owner, "config_dir", "a directory holding the model's HF config.json and tokenizer when "
            "the checkpoint is a torch DCP directory", config_dir,
            f"{os.path.join(files, 'config.json')} does not exist; set config_dir in the evaluator "
            "config (or CheckpointConfig(config_dir=...), which copies those files into every "
            "snapshot).")
    return path, files


def _model_from_state_dict(config_dir: str, state_dict: dict, dtype: Any, config: Any = None) -> Any:
    """Build the model of ``config_dir`` and load ``state_dict`` into it.

    The same weights as ``from_pretrained``, without its per-call machinery (hub
    lookups, sharding, quantisation), which dominates on the tiny checkpoints a
    monitor evaluates often.

    Raises
    ------
    CheckpointError
        Keys of the state dict that the model lacks, or model weights it misses.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig

    if config is None:
        config = AutoConfig.from_pretrained(config_dir)
    model = AutoModelForCausalLM.from_config(config)
    td = resolve_dtype(dtype)
    if td == "auto":
        # as from_pretrained(dtype="auto"): the config's dtype, else the saved tensors'
        td = getattr(config, "dtype", None)
        if not isinstance(td, torch.dtype):
            saved = [t.dtype for t in state_dict.values() if t.is_floating_point()]
            td = saved[0] if saved else "auto"
    if td != "auto":
        model = model.to(td)
    try:
        result = model.load_state_dict(state_dict, strict=False)
    except RuntimeError as exc:  # shapes that are not the config's: the same on every attempt
        raise CorruptCheckpointError(
            os.path.join(config_dir, "config.json"),
            f"not the config of these weights ({' '.join(str(exc).split())[:300]})",
            "Save the config.json of the model these weights were trained with beside them.",
        ) from None
    tied = set(getattr(model, "_tied_weights_keys", None) or ())
    missing = sorted(set(result.missing_keys) - tied)
    if missing or result.unexpected_keys:
        raise CheckpointError(
            f"The state_dict does not fit the config in {config_dir}: missing {missing[:5]}, "
            f"unexpected {sorted(result.unexpected_keys)[:5]}."
        )
    model.tie_weights()
    if os.path.isfile(os.path.join(config_dir, "generation_config.json")):
        model.generation_config = GenerationConfig.from_pretrained(config_dir)
    return model


def load_hf_checkpoint(checkpoint: Any, *, device: str = "cpu", dtype: Any = None,
                       checkpoint_format: str = "auto", dcp_mapping: str = "torchtitan_llama",
                       config_dir: Any = None) -> tuple:
    """Load a checkpoint in any form :class:`~cod_monitor.evaluators.hf.HFEvaluator` accepts.

    Parameters
    ----------
    checkpoint : path-like, Checkpoint, (model, tokenizer) or dict
        A ``save_pretrained`` directory (or a :class:`~cod_monitor.records.Checkpoint`
        with its ``path``), a torch DCP directory (see `checkpoint_format`), an
        in-memory ``(model, tokenizer)`` pair (used as is, on its own device), or
        ``{"state_dict": ..., "config_dir": path}`` (a model built from the config and
        tokenizer in `config_dir`, then the state dict loaded).
    device : str, default='cpu'
        Device for models this function builds.
    dtype : torch.dtype, str or None
        Dtype for models this function builds; ``None`` keeps the saved dtype.
    checkpoint_format : {'auto', 'hf', 'dcp'}, default='auto'
        ``'auto'``: a directory with a ``.metadata`` file is a torch DCP checkpoint,
        any other a ``save_pretrained`` one. ``'dcp'`` refuses other directories,
        ``'hf'`` never reads DCP.
    dcp_mapping : str, default='torchtitan_llama'
        The name mapping from the DCP checkpoint's tensors to the HF model's (a
        registered name or a ``'module:function'`` path; see
        :func:`~cod_monitor.evaluators.dcp.register_dcp_mapping`).
    config_dir : str or path-like, optional
        For a DCP checkpoint, the directory with the HF ``config.json``, tokenizer
        (and optional ``generation_config.json``); ``None``: the DCP directory itself.

    Returns
    -------
    model, tokenizer, owned : tuple
        `owned` is False for an in-memory pair (the caller's model).
    label : str
        A short description for ``EvalResult.meta["checkpoint"]``.

    Raises
    ------
    MissingExtraError
        torch or transformers is not installed.
    EvaluatorConfigError
        A checkpoint of another form, a ``Checkpoint`` without a path, or a dict
        without both keys.
        A DCP checkpoint without a config (see `config_dir`), or an unknown
        `dcp_mapping`.
    FileNotFoundError
        The directory does not exist (or is a file).
    CorruptCheckpointError
        A directory without ``config.json``, weights or tokenizer, a ``config.json``
        that is not JSON or does not fit the weights' shapes, or a ``.safetensors`` file
        that is truncated or corrupt (the message names the file).
    CheckpointError
        A state dict that does not fit its config; a DCP checkpoint that lacks a
        tensor the mapping reads, or with ``checkpoint_format='dcp'`` a directory
        that is not DCP.
    """
    require_hf()
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    owner = "load_hf_checkpoint"
    checkpoint = checkpoint_location(checkpoint, owner)
    dcp = dcp_source(checkpoint, checkpoint_format=checkpoint_format, config_dir=config_dir, owner=owner)
    if dcp is not None:
        path, files = dcp
        config = AutoConfig.from_pretrained(files)
        state = dcp_to_hf_state_dict(path, config, dcp_mapping)
        try:
            model = _model_from_state_dict(files, state, dtype, config)
        except CheckpointError as exc:
            raise CheckpointError(f"The DCP checkpoint {path}, converted by the mapping "
                                  f"{dcp_mapping!r}: {exc}") from None
        del state
        tokenizer = AutoTokenizer.from_pretrained(files)
        return model.to(device).eval(), tokenizer, True, path
    if isinstance(checkpoint, (tuple, list)) and len(checkpoint) == 2:
        model, tokenizer = checkpoint
        return model, tokenizer, False, "<in-memory>"
    if isinstance(checkpoint, dict):
        if "state_dict" not in checkpoint or "config_dir" not in checkpoint:
            raise EvaluatorConfigError(
                owner, "checkpoint", "a dict with keys 'state_dict' and 'config_dir'",
                f"a dict with keys {sorted(checkpoint)}",
            )
        config_dir = os.fspath(checkpoint["config_dir"])
        model = _model_from_state_dict(config_dir, checkpoint["state_dict"], dtype)
        tokenizer = AutoTokenizer.from_pretrained(config_dir)
        return model.to(device).eval(), tokenizer, True, f"<state_dict:{config_dir}>"
    if isinstance(checkpoint, (str, os.PathLike)):
        path = os.fspath(checkpoint)
        if not os.path.isdir(path):
            what = "is a file, not a directory" if os.path.exists(path) else "does not exist"
            raise FileNotFoundError(f"The checkpoint directory {path!r} {what}. Pass the "
                                    "directory save_pretrained wrote (config.json, weights, "
                                    "tokenizer).")
        # a truncated or corrupt file fails the same way on every attempt: name it, as a
        # permanent error, instead of the reader's message (which names no file)
        bad = unreadable_file(path)
        if bad is not None:
            raise bad
        if _plain_safetensors_dir(path):
            from safetensors.torch import load_file

            model = _model_from_state_dict(path, load_file(os.path.join(path, "model.safetensors")), dtype)
        else:
            model = AutoModelForCausalLM.from_pretrained(path, dtype=resolve_dtype(dtype))
        tokenizer = AutoTokenizer.from_pretrained(path)
        return model.to(device).eval(), tokenizer, True, path
    raise EvaluatorConfigError(
        owner, "checkpoint",
        "a directory, a Checkpoint with a path, a (model, tokenizer) pair or "
        "{'state_dict': ..., 'config_dir': ...}", type(checkpoint),
    )
