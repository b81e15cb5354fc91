"""torch Distributed Checkpoint (DCP) directories, as torchtitan and Megatron-core write them.

torchtitan (``checkpoint/step-<N>``) and Megatron-core with ``--ckpt-format torch_dist``
(``iter_<N>``) save with :mod:`torch.distributed.checkpoint`: a directory of
``*.distcp`` data files, sharded however the ranks held the tensors, and a
``.metadata`` file that DCP writes last and renames into place, so its presence means
the save is complete. The tensors carry the training framework's names
(``layers.0.attention.wq.weight``), not HF's (``model.layers.0.self_attn.q_proj.weight``).

- :func:`is_dcp_directory`: a directory with a ``.metadata`` file.
- :class:`DCPStateDict`: the checkpoint's tensors by their flat names, as a read-only
  mapping that reads a tensor on first access, whole (every shard gathered), on CPU,
  without a process group. Optimizer states in the same directory are never read
  unless asked for.
- A registry of **name mappings** (:func:`register_dcp_mapping`,
  :func:`dcp_mappings`, :func:`resolve_dcp_mapping`): a mapping is a callable
  ``mapping(state, config) -> dict`` from a :class:`DCPStateDict` and the HF config
  of the model to an HF state dict. ``'torchtitan_llama'``
  (:func:`torchtitan_llama_to_hf`) is built in.
- :func:`dcp_to_hf_state_dict`: both together. The HF evaluator calls it for a
  snapshot that is a DCP directory (``HFEvaluator(checkpoint_format=..., dcp_mapping=...,
  config_dir=...)``), inside the evaluation worker.

Nothing is unpickled beyond DCP's own metadata. ``.metadata`` is a pickle: it is read
with an unpickler that admits only DCP's metadata classes (dataclasses and enums of
``torch.distributed.checkpoint``), ``torch.Size``, torch dtypes, layouts and memory
formats, and paths; anything else is refused with :class:`CheckpointError`. Tensors
are read by DCP's reader (``torch.load(weights_only=True)`` per item). The non-tensor
entries of a checkpoint (torchtitan's dataloader and train state, Transformer Engine's
``_extra_state``) are pickled objects and are never read:
``torch.distributed.checkpoint.format_utils.dcp_to_torch_save`` is not used because
it loads them with ``weights_only=False``.

torch is imported on first use; importing this module is cheap.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import io
import os
import pickle
import re
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from cod_monitor.evaluators.base import CheckpointError, EvaluatorConfigError

__all__ = [
    "DCPStateDict",
    "dcp_mappings",
    "dcp_to_hf_state_dict",
    "hf_llama_to_torchtitan",
    "is_dcp_directory",
    "register_dcp_mapping",
    "resolve_dcp_mapping",
    "torchtitan_llama_to_hf",
]

#: The file DCP writes last; its presence marks a complete DCP directory.
METADATA_FILE = ".metadata"


def is_dcp_directory(path: Any) -> bool:
    """Whether `path` is a torch DCP directory (it holds a ``.metadata`` file).

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    bool

    Examples
    --------
    >>> import tempfile
    >>> is_dcp_directory(tempfile.mkdtemp())
    False
    """
    return isinstance(path, (str, os.PathLike)) and os.path.isfile(os.path.join(path, METADATA_FILE))


# ---------------------------------------------------------------------------- metadata
_PATH_CLASSES = ("Path", "PosixPath", "WindowsPath", "PurePath", "PurePosixPath", "PureWindowsPath")


def _allowed_global(module: str, name: str) -> Any:
    """The object a ``.metadata`` pickle may name, or ``None``."""
    import torch

    if module == "torch":
        if name == "Size":
            return torch.Size
        value = getattr(torch, name, None)
        return value if isinstance(value, (torch.dtype, torch.layout, torch.memory_format)) else None
    if (module, name) == ("torch.serialization", "_get_layout"):
        from torch.serialization import _get_layout

        return _get_layout
    if module == "torch.distributed.checkpoint" or module.startswith("torch.distributed.checkpoint."):
        try:
            value = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            return None
        # records only: building a dataclass or an enum member runs no other code
        if isinstance(value, type) and (dataclasses.is_dataclass(value) or issubclass(value, enum.Enum)):
            return value
        return None
    if module == "pathlib" and name in _PATH_CLASSES:
        import pathlib

        return getattr(pathlib, name)
    if (module, name) == ("collections", "OrderedDict"):
        from collections import OrderedDict

        return OrderedDict
    return None


class _Refused(pickle.UnpicklingError):
    """A global outside the allowlist."""


class _MetadataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        value = _allowed_global(module, name)
        if value is None:
            raise _Refused(f"{module}.{name}")
        return value


def _read_metadata(path: str) -> Any:
    """The ``Metadata`` of a DCP directory, unpickled with the allowlist."""
    file = os.path.join(path, METADATA_FILE)
    with open(file, "rb") as fh:
        data = fh.read()
    try:
        metadata = _MetadataUnpickler(io.BytesIO(data)).load()
    except _Refused as exc:
        raise CheckpointError(
            f"{file} names {exc}, which is not DCP metadata: it is not read (a pickle can run "
            "any code). Only DCP's metadata records, torch sizes, dtypes and paths are allowed; "
            "check that the directory was written by torch.distributed.checkpoint."
        ) from None
    except Exception as exc:  # truncated or not a pickle
        raise CheckpointError(f"{file} is not a readable DCP metadata file "
                              f"({type(exc).__name__}: {exc}).") from None
    if not hasattr(metadata, "state_dict_metadata"):
        raise CheckpointError(f"{file} holds a {type(metadata).__name__}, not DCP metadata.")
    return metadata


def _reader(path: str, metadata: Any) -> Any:
    """DCP's file-system reader for `path`, serving the metadata read safely."""
    from torch.distributed.checkpoint import FileSystemReader
    from torch.distributed.checkpoint.metadata import StorageMeta

    class _Reader(FileSystemReader):
        def read_metadata(self, *args: Any, **kwargs: Any) -> Any:
            if getattr(metadata, "storage_meta", None) is None:
                metadata.storage_meta = StorageMeta()
            metadata.storage_meta.load_id = self.load_id
            return metadata

    return _Reader(path)


class DCPStateDict(Mapping):
    """The tensors of a torch DCP directory by their flat names, read on first access.

    A read-only mapping: ``state["layers.0.attention.wq.weight"]`` reads that tensor
    (all its shards, into one CPU tensor of the saved dtype) the first time and keeps
    it. Iteration, ``len`` and ``in`` use the metadata only. Nested entries of the
    saved state dict have dotted names (``optimizer.state.<param>.exp_avg``).
    Non-tensor entries (pickled objects) are not part of the mapping.

    Parameters
    ----------
    path : str or path-like
        The DCP directory.

    Attributes
    ----------
    path : str
    metadata : torch.distributed.checkpoint.metadata.Metadata
        Read with the allowlist unpickler described in the module docstring.

    Raises
    ------
    FileNotFoundError
        `path` has no ``.metadata`` file.
    CheckpointError
        ``.metadata`` is not DCP metadata, or names a class outside the allowlist.
    KeyError
        A name the checkpoint has no tensor for (on access).

    Examples
    --------
    >>> state = DCPStateDict("outputs/checkpoint/step-1000")  # doctest: +SKIP
    >>> state.shape("tok_embeddings.weight")  # doctest: +SKIP
    (128256, 4096)
    >>> state["norm.weight"].dtype  # doctest: +SKIP
    torch.float32
    """

    def __init__(self, path: Any):
        self.path = os.fspath(path)
        if not is_dcp_directory(self.path):
            raise FileNotFoundError(f"{self.path!r} is not a DCP directory: it has no {METADATA_FILE} file.")
        from torch.distributed.checkpoint.metadata import TensorStorageMetadata

        self.metadata = _read_metadata(self.path)
        self._specs = {k: v for k, v in self.metadata.state_dict_metadata.items()
                       if isinstance(v, TensorStorageMetadata)}
        self._cache: dict = {}

    def shape(self, key: str) -> tuple:
        """The saved shape of tensor `key`, without reading it."""
        return tuple(self._spec(key).size)

    def dtype(self, key: str) -> Any:
        """The saved dtype of tensor `key`, without reading it."""
        return self._spec(key).properties.dtype

    def _spec(self, key: str) -> Any:
        try:
            return self._specs[key]
        except KeyError:
            raise KeyError(key) from None

    def __getitem__(self, key: str) -> Any:
        if key in self._cache:
            return self._cache[key]
        spec = self._spec(key)
        import torch
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint import DefaultLoadPlanner

        out = {key: torch.empty(tuple(spec.size), dtype=spec.properties.dtype)}
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="torch.distributed is disabled")
            # no_dist: never a collective, even in a process with a process group
            dcp.load(out, storage_reader=_reader(self.path, self.metadata),
                     planner=DefaultLoadPlanner(), no_dist=True)
        self._cache[key] = out[key]
        return out[key]

    def __contains__(self, key: object) -> bool:
        return key in self._specs

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def __repr__(self) -> str:
        return f"DCPStateDict({self.path!r}, {len(self)} tensors)"


# ---------------------------------------------------------------------------- mappings
def _permute_to_hf(w: Any, n_heads: int) -> Any:
    """Rows of q/k projection heads from interleaved rotary pairs to HF's halves.

    torchtitan (as Meta's Llama) rotates pairs of adjacent channels (2j, 2j+1) of a
    head; HF's ``rotate_half`` rotates (j, j + head_dim/2). The same permutation as HF's
    ``convert_llama_weights_to_hf.py`` and torchtitan's ``to_hf``.
    """
    rows, cols = w.shape
    return w.reshape(n_heads, rows // n_heads // 2, 2, cols).transpose(1, 2).reshape(rows, cols)


def _permute_from_hf(w: Any, n_heads: int) -> Any:
    """The inverse of :func:`_permute_to_hf`."""
    rows, cols = w.shape
    return w.reshape(n_heads, 2, rows // n_heads // 2, cols).transpose(1, 2).reshape(rows, cols)


def _heads(config: Any) -> tuple[int, int]:
    n_heads = int(config.num_attention_heads)
    n_kv = getattr(config, "num_key_value_heads", None)
    return n_heads, int(n_kv) if n_kv else n_heads


#: torchtitan Llama name -> HF Llama name, per layer ({i}) and outside the layers.
_TORCHTITAN_LAYER = {
    "attention.wq.weight": "self_attn.q_proj.weight",
    "attention.wk.weight": "self_attn.k_proj.weight",
    "attention.wv.weight": "self_attn.v_proj.weight",
    "attention.wo.weight": "self_attn.o_proj.weight",
    "feed_forward.w1.weight": "mlp.gate_proj.weight",
    "feed_forward.w2.weight": "mlp.down_proj.weight",
    "feed_forward.w3.weight": "mlp.up_proj.weight",
    "attention_norm.weight": "input_layernorm.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight",
}
_TORCHTITAN_TOP = {
    "tok_embeddings.weight": "model.embed_tokens.weight",
    "norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}


def torchtitan_llama_to_hf(state: Mapping, config: Any) -> dict:
    """HF Llama weights from a torchtitan Llama (2/3) state dict.

    The mapping registered as ``'torchtitan_llama'``: the inverse of torchtitan's
    ``Llama3StateDictAdapter.from_hf``, as its ``to_hf``.

    ==================================== ============================================
    torchtitan                           HF ``LlamaForCausalLM``
    ==================================== ============================================
    ``tok_embeddings.weight``            ``model.embed_tokens.weight``
    ``layers.{i}.attention.wq.weight``   ``model.layers.{i}.self_attn.q_proj.weight``
                                         (rows permuted, see Notes)
    ``layers.{i}.attention.wk.weight``   ``...self_attn.k_proj.weight`` (permuted)
    ``layers.{i}.attention.wv/wo``       ``...self_attn.v_proj/o_proj``
    ``layers.{i}.feed_forward.w1/w3/w2`` ``...mlp.gate_proj/up_proj/down_proj``
    ``layers.{i}.attention_norm``        ``...input_layernorm``
    ``layers.{i}.ffn_norm``              ``...post_attention_layernorm``
    ``norm.weight``                      ``model.norm.weight``
    ``output.weight``                    ``lm_head.weight`` (may be absent when the
                                         config ties the embeddings)
    ==================================== ============================================

    Names may carry a ``model.`` prefix (older torchtitan checkpoints). Other entries
    of the checkpoint (optimizer, scheduler, dataloader, train state) are not read.

    Parameters
    ----------
    state : mapping of str to tensor
        The checkpoint's tensors by flat name (a :class:`DCPStateDict`, or a dict).
    config : transformers.PretrainedConfig
        The HF config of the model: ``num_hidden_layers``, ``num_attention_heads``,
        ``num_key_value_heads``, ``tie_word_embeddings``.

    Returns
    -------
    dict
        HF name -> tensor.

    Raises
    ------
    KeyError
        A tensor the mapping needs is missing (:func:`dcp_to_hf_state_dict` reports
        it with the mapping's name).
    CheckpointError
        The checkpoint has more layers than ``config.num_hidden_layers``.

    Notes
    -----
    torchtitan's attention applies the rotary embedding to interleaved channel pairs
    (``torch.view_as_complex`` over ``(..., head_dim/2, 2)``), HF Llama to the two
    halves of each head (``rotate_half``). The rows of ``wq`` and ``wk`` are therefore
    permuted per head, ``w.view(h, d/2, 2, dim).transpose(1, 2)``, which is what
    torchtitan's own ``to_hf`` does. Verified in ``tests/evaluators/test_dcp.py``: the
    logits of an HF model loaded through this mapping equal, to float32 rounding,
    those of a reimplementation of torchtitan's forward pass on the torchtitan
    weights, and differ without the permutation.

    Examples
    --------
    >>> hf = torchtitan_llama_to_hf(DCPStateDict("step-1000"), config)  # doctest: +SKIP
    >>> model.load_state_dict(hf)  # doctest: +SKIP
    """
    prefix = "model." if ("tok_embeddings.weight" not in state
                          and "model.tok_embeddings.weight" in state) else ""
    n_layers = int(config.num_hidden_layers)
    extra = re.compile(rf"{re.escape(prefix)}layers\.(\d+)\.")
    deeper = sorted({int(m.group(1)) for k in state if (m := extra.match(k)) and int(m.group(1)) >= n_layers})
    if deeper:
        raise CheckpointError(
            f"The checkpoint has layers up to {prefix}layers.{deeper[-1]}, but the HF config has "
            f"num_hidden_layers={n_layers}: the config does not describe the trained model. "
            "Give the config.json of the model that was trained."
        )
    n_heads, n_kv = _heads(config)
    out = {hf: state[prefix + tt] for tt, hf in _TORCHTITAN_TOP.items() if tt != "output.weight"}
    for i in range(n_layers):
        for tt, hf in _TORCHTITAN_LAYER.items():
            w = state[f"{prefix}layers.{i}.{tt}"]
            if tt == "attention.wq.weight":
                w = _permute_to_hf(w, n_heads)
            elif tt == "attention.wk.weight":
                w = _permute_to_hf(w, n_kv)
            out[f"model.layers.{i}.{hf}"] = w
    if not getattr(config, "tie_word_embeddings", False) or prefix + "output.weight" in state:
        out["lm_head.weight"] = state[prefix + "output.weight"]
    return out


def hf_llama_to_torchtitan(state_dict: Mapping, config: Any) -> dict:
    """torchtitan Llama weights from an HF Llama state dict (the inverse mapping).

    What torchtitan's ``Llama3StateDictAdapter.from_hf`` does: the names of
    :func:`torchtitan_llama_to_hf` reversed, and the rows of ``q_proj``/``k_proj``
    permuted back to interleaved rotary pairs. Useful to start a torchtitan run from
    HF weights, and to test a DCP pipeline without torchtitan.

    Parameters
    ----------
    state_dict : mapping of str to tensor
        An HF ``LlamaForCausalLM`` state dict.
    config : transformers.PretrainedConfig

    Returns
    -------
    dict
        torchtitan name -> tensor (``output.weight`` always present: torchtitan does
        not tie).

    Raises
    ------
    KeyError
        A weight of the HF model is missing.

    Examples
    --------
    >>> tt = hf_llama_to_torchtitan(model.state_dict(), model.config)  # doctest: +SKIP
    >>> torchtitan_llama_to_hf(tt, model.config).keys() == model.state_dict().keys()  # doctest: +SKIP
    True
    """
    n_heads, n_kv = _heads(config)
    out = {}
    for tt, hf in _TORCHTITAN_TOP.items():
        if hf == "lm_head.weight" and hf not in state_dict:  # tied: the embedding
            hf = "model.embed_tokens.weight"
        out[tt] = state_dict[hf]
    for i in range(int(config.num_hidden_layers)):
        for tt, hf in _TORCHTITAN_LAYER.items():
            w = state_dict[f"model.layers.{i}.{hf}"]
            if tt == "attention.wq.weight":
                w = _permute_from_hf(w, n_heads)
            elif tt == "attention.wk.weight":
                w = _permute_from_hf(w, n_kv)
            out[f"layers.{i}.{tt}"] = w
    return out


#: Mapping name -> callable, or its ``'module:function'`` path until first use.
_MAPPINGS: dict[str, Any] = {
    "torchtitan_llama": torchtitan_llama_to_hf,
}


def register_dcp_mapping(name: str, mapping: Callable | str) -> None:
    """Make ``dcp_mapping=name`` convert DCP checkpoints with `mapping`.

    Parameters
    ----------
    name : str
        The mapping's name (replaces an earlier registration of it). It must not
        contain ``':'`` (that marks a ``'module:function'`` path).
    mapping : callable or str
        ``mapping(state, config) -> dict``: `state` is the checkpoint's tensors by
        flat name (a :class:`DCPStateDict`: a read-only mapping that reads a tensor
        when it is first accessed, so read only what the model needs; ``in`` reads
        nothing), `config` the HF config of the model
        (``transformers.PretrainedConfig``); it returns the HF state dict, every
        weight of the model. A ``KeyError`` (reading a missing name raises one) is
        reported with its key and the mapping's name. Or its ``'module:function'``
        path, imported on first use.

    Raises
    ------
    EvaluatorConfigError
        An empty name or one with ``':'``, or a mapping that is neither a callable nor
        a ``'module:function'`` str.

    Notes
    -----
    Evaluation workers are separate processes: a name registered in the training
    process exists in a worker only if the worker runs the registration too. A
    ``'module:function'`` path given directly as ``dcp_mapping`` needs no
    registration and works in every worker that can import the module.

    Examples
    --------
    Megatron-core GPT checkpoints (``torch_dist``) stack the query, key and value
    projections in one ``linear_qkv`` weight, grouped by key/value head: per group,
    its query heads' rows, then its key head's, then its value head's; with
    homogeneous layers every layer's weight is one tensor with a leading layer axis.
    The attention part of a mapping for them (``examples/megatron_hook.py`` has the
    whole model):

    >>> def megatron_gpt_to_hf(state, config):
    ...     n_q, n_kv = config.num_attention_heads, config.num_key_value_heads
    ...     d = config.hidden_size // n_q  # head_dim
    ...     qkv = state["decoder.layers.self_attention.linear_qkv.weight"]  # (L, rows, hidden)
    ...     out = {}
    ...     for i in range(config.num_hidden_layers):
    ...         groups = qkv[i].view(n_kv, (n_q // n_kv + 2) * d, -1)
    ...         q, k, v = groups.split([n_q // n_kv * d, d, d], dim=1)
    ...         out[f"model.layers.{i}.self_attn.q_proj.weight"] = q.reshape(n_q * d, -1)
    ...         out[f"model.layers.{i}.self_attn.k_proj.weight"] = k.reshape(n_kv * d, -1)
    ...         out[f"model.layers.{i}.self_attn.v_proj.weight"] = v.reshape(n_kv * d, -1)
    ...     return out  # ... and the other weights
    >>> register_dcp_mapping("megatron_gpt_attention", megatron_gpt_to_hf)
    >>> "megatron_gpt_attention" in dcp_mappings()
    True
    """
    if not isinstance(name, str) or not name or ":" in name:
        raise EvaluatorConfigError("register_dcp_mapping", "name", "a non-empty str without ':'", name)
    if isinstance(mapping, str):
        if mapping.count(":") != 1:
            raise EvaluatorConfigError("register_dcp_mapping", "mapping", "a callable or a "
                                       "'module:function' str", mapping)
    elif not callable(mapping):
        raise EvaluatorConfigError("register_dcp_mapping", "mapping", "a callable or a "
                                   "'module:function' str", mapping)
    _MAPPINGS[name] = mapping


def dcp_mappings() -> tuple[str, ...]:
    """The registered DCP mapping names, in registration order."""
    return tuple(_MAPPINGS)


def _import_function(path: str, owner: str, name: str) -> Callable:
    module, _, attr = path.partition(":")
    try:
        value = importlib.import_module(module)
        for part in attr.split("."):
            value = getattr(value, part)
    except (ImportError, AttributeError) as exc:
        raise EvaluatorConfigError(
            owner, name, "a registered DCP mapping name or an importable 'module:function' path",
            path, f"Importing it failed: {type(exc).__name__}: {exc}.") from None
    if not callable(value):
        raise EvaluatorConfigError(owner, name, "a registered DCP mapping name or an importable "
                                   "'module:function' path", path, f"It names a {type(value).__name__}.")
    return value


def resolve_dcp_mapping(spec: str, owner: str = "resolve_dcp_mapping", name: str = "dcp_mapping") -> Callable:
    """The mapping callable that `spec` names.

    Parameters
    ----------
    spec : str
        A registered name (:func:`dcp_mappings`) or a ``'module:function'`` path.
    owner, name : str
        The class (or function) and the parameter named in the error.

    Returns
    -------
    callable

    Raises
    ------
    EvaluatorConfigError
        An unregistered name (the message lists the registered ones), or a path that
        does not import or is not callable.

    Examples
    --------
    >>> resolve_dcp_mapping("torchtitan_llama").__name__
    'torchtitan_llama_to_hf'
    """
    if not isinstance(spec, str) or not spec:
        raise EvaluatorConfigError(owner, name, "a registered DCP mapping name or a 'module:function' "
                                   "str", spec, f"The registered mappings are {list(_MAPPINGS)}.")
    if spec in _MAPPINGS:
        value = _MAPPINGS[spec]
        if isinstance(value, str):
            value = _MAPPINGS[spec] = _import_function(value, owner, name)
        return value
    if ":" in spec:
        return _import_function(spec, owner, name)
    raise EvaluatorConfigError(
        owner, name, f"a registered DCP mapping name (one of {list(_MAPPINGS)}) or a "
        "'module:function' path", spec,
        "Register another with cod_monitor.evaluators.dcp.register_dcp_mapping(name, function) "
        "in the process that evaluates, or give its 'module:function' path.")


def _first_parts(keys: Any, limit: int = 8) -> list[str]:
    parts = sorted({k.split(".", 1)[0] for k in keys})
    return parts[:limit] + (["..."] if len(parts) > limit else [])


def dcp_to_hf_state_dict(path: Any, config: Any, mapping: str = "torchtitan_llama") -> dict:
    """An HF state dict from a torch DCP directory, through a name mapping.

    Parameters
    ----------
    path : str or path-like
        The DCP directory (a ``.metadata`` file and ``*.distcp`` files).
    config : transformers.PretrainedConfig, str or path-like
        The HF config of the model, or the directory holding its ``config.json``.
    mapping : str, default 'torchtitan_llama'
        A registered mapping name (:func:`dcp_mappings`) or a ``'module:function'``
        path; see :func:`register_dcp_mapping`.

    Returns
    -------
    dict
        HF name -> CPU tensor, in the checkpoint's dtype; load it with
        ``model.load_state_dict``.

    Raises
    ------
    FileNotFoundError
        `path` is not a DCP directory.
    EvaluatorConfigError
        An unknown mapping.
    CheckpointError
        A tensor the mapping reads is missing (the message names it, the mapping and
        the checkpoint's top-level names), the mapping returned something other than
        a dict of tensors, or ``.metadata`` is not DCP metadata.

    Examples
    --------
    >>> sd = dcp_to_hf_state_dict("outputs/checkpoint/step-1000", "hf-config/",
    ...                           mapping="torchtitan_llama")  # doctest: +SKIP
    """
    import torch

    fn = resolve_dcp_mapping(mapping, "dcp_to_hf_state_dict", "mapping")
    if isinstance(config, (str, os.PathLike)):
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(os.fspath(config))
    state = DCPStateDict(path)
    try:
        out = fn(state, config)
    except KeyError as exc:  # a name the checkpoint lacks (DCPStateDict's, or the mapping's own)
        key = exc.args[0] if exc.args else None
        raise CheckpointError(
            f"The DCP checkpoint {state.path} has no tensor {key!r}, which the DCP mapping "
            f"{mapping!r} reads; its tensors' names start with {_first_parts(state)}. Choose the "
            f"mapping of the framework that wrote it (registered: {list(_MAPPINGS)}) or register "
            "one with register_dcp_mapping, and check that the HF config describes the trained model."
        ) from None
    if not isinstance(out, Mapping) or not all(isinstance(v, torch.Tensor) for v in out.values()):
        raise CheckpointError(f"The DCP mapping {mapping!r} returned a {type(out).__name__}, not a "
                              "dict of HF names to tensors.")
    return dict(out)
