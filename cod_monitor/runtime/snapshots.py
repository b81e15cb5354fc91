"""Snapshots: a private, immutable copy of a checkpoint for asynchronous evaluation.

A training loop keeps going while its checkpoints are evaluated, so the evaluator
must not read the trainer's files: the HF ``Trainer`` deletes old
``checkpoint-*`` directories as soon as ``save_total_limit`` is exceeded (and its
``on_save`` event fires after that rotation, see FACTS.md), and an in-memory model
keeps changing.

* :func:`snapshot_directory` runs synchronously inside ``on_checkpoint``: it hard
  links every file of the checkpoint directory (falling back to a copy, e.g. across
  file systems) into a temporary directory next to the destination, then renames it
  into place, so the snapshot either exists complete or not at all. A hard link keeps
  the data alive when the trainer deletes its directory; it does **not** protect
  against a trainer that rewrites a file in place (pass ``link=False`` then).
  Optimizer, scheduler and RNG state files are skipped by default: evaluation needs
  only the weights and the configuration.
* :func:`cpu_state_dict` copies an in-memory state dict to CPU on the training
  thread (the only part that must be synchronous: training mutates the tensors
  afterwards) and :class:`SnapshotWriter` writes it with safetensors on a background
  thread, together with the configuration files of ``config_dir`` so that an
  evaluator can ``from_pretrained`` it.

torch and safetensors are imported only by the functions that handle tensors.
"""

from __future__ import annotations

import concurrent.futures
import fnmatch
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cod_monitor._validation import check_bool
from cod_monitor.exceptions import MissingExtraError

__all__ = [
    "SKIP_PATTERNS",
    "WEIGHT_PATTERNS",
    "Snapshot",
    "SnapshotWriter",
    "clear_partial_snapshots",
    "cpu_state_dict",
    "delete_snapshot",
    "snapshot_directory",
    "write_state_dict",
]

logger = logging.getLogger(__name__)

#: Top-level files and directories of a checkpoint that evaluation never needs
#: (HF Trainer / DeepSpeed training state).
SKIP_PATTERNS: tuple[str, ...] = (
    "optimizer.pt",
    "optimizer.bin",
    "optimizer*.safetensors",
    "scheduler.pt",
    "scaler.pt",
    "rng_state*.pth",
    "global_step*",
)

#: Weight files, left out when copying a ``config_dir`` next to a written state dict.
WEIGHT_PATTERNS: tuple[str, ...] = (
    "*.safetensors",
    "*.safetensors.index.json",
    "*.bin",
    "*.bin.index.json",
    "*.pt",
    "*.pth",
    "*.ckpt",
)

_TMP_PREFIX = ".tmp-"


@dataclass(frozen=True)
class Snapshot:
    """A finished snapshot: a complete directory that nothing else writes to, and how
    it was made.

    Attributes
    ----------
    path : str
        The snapshot directory.
    method : {'hardlink', 'copy', 'mixed', 'safetensors'}
        How the files got there (``'mixed'``: some links failed and were copied).
    n_files : int
    n_bytes : int
    seconds : float
        Wall time of the snapshot.
    """

    path: str
    method: str
    n_files: int
    n_bytes: int
    seconds: float


def _skipped(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatch(name, p) for p in patterns)


def _tmp_dir(dest: Path) -> Path:
    return dest.parent / f"{_TMP_PREFIX}{dest.name}-{uuid.uuid4().hex[:8]}"


def _link_or_copy(src: Path, dst: Path, link: bool) -> bool:
    """Hard link ``src`` to ``dst`` (True) or copy it (False)."""
    if link:
        try:
            os.link(src, dst)
            return True
        except OSError:
            pass
    shutil.copy2(src, dst)
    return False


def _fill(src_dir: Path, dst_dir: Path, *, link: bool, skip: Iterable[str],
          only_missing: bool = False) -> tuple[int, int, int]:
    """Mirror ``src_dir`` into ``dst_dir``; returns (files, bytes, files linked)."""
    n_files = n_bytes = n_linked = 0
    skip = tuple(skip)
    for root, dirs, files in os.walk(src_dir):
        rel = Path(root).relative_to(src_dir)
        if rel == Path("."):
            dirs[:] = [d for d in dirs if not _skipped(d, skip)]
            files = [f for f in files if not _skipped(f, skip)]
        target = dst_dir / rel
        target.mkdir(parents=True, exist_ok=True)
        for name in files:
            dst = target / name
            if only_missing and dst.exists():
                continue
            src = Path(root) / name
            n_linked += _link_or_copy(src, dst, link)
            n_files += 1
            n_bytes += dst.stat().st_size
    return n_files, n_bytes, n_linked


def _publish(tmp: Path, dest: Path) -> None:
    """Atomically move a finished temporary directory into place."""
    if dest.exists():  # a stale snapshot of the same step (e.g. after a crash): replace it
        stale = _tmp_dir(dest)
        os.rename(dest, stale)
        shutil.rmtree(stale, ignore_errors=True)
    os.rename(tmp, dest)


def snapshot_directory(
    source,
    dest,
    *,
    link: bool = True,
    skip: Iterable[str] = SKIP_PATTERNS,
    extra_from=None,
) -> Snapshot:
    """Snapshot a checkpoint directory: hard links (or copies), then an atomic rename.

    Parameters
    ----------
    source : str or path-like
        The checkpoint directory (e.g. ``output_dir/checkpoint-1200``).
    dest : str or path-like
        The snapshot directory to create; its parent must be on the file system the
        snapshot is built on (the temporary directory is a sibling).
    link : bool, default True
        Hard link files, falling back to a copy per file when linking fails.
        ``False`` always copies.
    skip : iterable of str, default SKIP_PATTERNS
        ``fnmatch`` patterns of top-level entries to leave out.
    extra_from : str or path-like, optional
        A directory whose files fill in what ``source`` lacks (e.g. the tokenizer,
        when the trainer does not save it with every checkpoint).

    Returns
    -------
    Snapshot

    Raises
    ------
    FileNotFoundError
        ``source`` (or ``extra_from``) is not a directory.
    OSError
        Linking and copying both failed; the temporary directory is removed.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> src = pathlib.Path(tempfile.mkdtemp()); (src / "config.json").write_text("{}")
    2
    >>> snap = snapshot_directory(src, src.parent / (src.name + "-snap"))
    >>> snap.method, snap.n_files
    ('hardlink', 1)
    """
    t0 = time.perf_counter()
    link = check_bool("snapshot_directory", "link", link)
    source, dest = Path(source), Path(dest)
    if not source.is_dir():
        raise FileNotFoundError(f"checkpoint directory {str(source)!r} does not exist")
    if extra_from is not None and not Path(extra_from).is_dir():
        raise FileNotFoundError(f"extra_from directory {str(extra_from)!r} does not exist")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_dir(dest)
    try:
        tmp.mkdir()
        n_files, n_bytes, n_linked = _fill(source, tmp, link=link, skip=skip)
        if extra_from is not None:
            f2, b2, l2 = _fill(Path(extra_from), tmp, link=link, skip=skip, only_missing=True)
            n_files, n_bytes, n_linked = n_files + f2, n_bytes + b2, n_linked + l2
        _publish(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if n_linked == n_files:
        method = "hardlink"
    elif n_linked == 0:
        method = "copy"
    else:
        method = "mixed"
    return Snapshot(str(dest), method, n_files, n_bytes, time.perf_counter() - t0)


def _is_torch_tensor(value) -> bool:
    return type(value).__module__.split(".")[0] == "torch" and hasattr(value, "detach")


def _copy_to_cpu(t):
    """A CPU copy of a tensor.

    CPU tensors are copied as raw bytes through numpy (one single-threaded memcpy):
    torch's own copy runs on its OpenMP pool, which stalls when the cores are busy (a
    training process, evaluation workers).
    """
    if t.device.type != "cpu" or t.numel() == 0 or t.is_sparse or t.dtype.is_complex:
        return t.to("cpu", copy=True)
    import torch

    src = t.contiguous()
    raw = src.reshape(-1).view(torch.uint8).numpy().copy()
    return torch.from_numpy(raw).view(src.dtype).reshape(src.shape)


def cpu_state_dict(state_dict: Mapping) -> dict:
    """Copy a state dict to CPU memory, now (the synchronous part of a snapshot).

    Tensors that share storage (tied weights) are copied once and stay shared, so
    memory is not doubled.

    Parameters
    ----------
    state_dict : mapping of str to tensor or ndarray
        ``model.state_dict()`` (torch tensors on any device) or numpy arrays.

    Returns
    -------
    dict
        Independent CPU copies; training may change the originals right after.

    Raises
    ------
    TypeError
        A value that is neither a torch tensor nor a numpy array.
    """
    import numpy as np

    out, seen = {}, {}
    for key, value in state_dict.items():
        if _is_torch_tensor(value):
            ident = (value.data_ptr(), value.dtype, tuple(value.shape), tuple(value.stride()),
                     str(value.device)) if value.numel() else None
            if ident is not None and ident in seen:
                out[key] = seen[ident]
                continue
            copy = _copy_to_cpu(value.detach())
            if ident is not None:
                seen[ident] = copy
            out[key] = copy
        elif isinstance(value, np.ndarray):
            out[key] = np.array(value, copy=True)
        else:
            raise TypeError(
                f"state_dict[{key!r}] should be a torch tensor or a numpy array, got "
                f"{type(value).__name__}"
            )
    return out


def write_state_dict(cpu_state: Mapping, dest, *, config_dir=None, link: bool = True) -> Snapshot:
    """Write a CPU state dict as ``model.safetensors`` plus config files, atomically.

    Parameters
    ----------
    cpu_state : mapping of str to tensor or ndarray
        Output of :func:`cpu_state_dict`.
    dest : str or path-like
        The snapshot directory to create.
    config_dir : str or path-like, optional
        Directory with ``config.json`` (and tokenizer files) for the evaluator; its
        weight files are left out.
    link : bool, default True
        Hard link the config files when possible.

    Returns
    -------
    Snapshot

    Raises
    ------
    MissingExtraError
        safetensors is not installed.
    """
    t0 = time.perf_counter()
    link = check_bool("write_state_dict", "link", link)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_dir(dest)
    try:
        tmp.mkdir()
        n_files = n_bytes = 0
        if config_dir is not None:
            n_files, n_bytes, _ = _fill(Path(config_dir), tmp, link=link,
                                        skip=SKIP_PATTERNS + WEIGHT_PATTERNS)
        _save_safetensors(cpu_state, tmp / "model.safetensors")
        n_files += 1
        n_bytes += (tmp / "model.safetensors").stat().st_size
        _publish(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Snapshot(str(dest), "safetensors", n_files, n_bytes, time.perf_counter() - t0)


def _save_safetensors(state: Mapping, path: Path) -> None:
    MissingExtraError.check("Snapshotting a state dict", "safetensors", "hf")
    if state and all(_is_torch_tensor(v) for v in state.values()):
        from safetensors.torch import save_file

        tensors, seen = {}, set()
        for key, value in state.items():
            # safetensors refuses shared storage: give every key its own contiguous copy
            t = value.contiguous()
            if id(value) in seen:  # a tied weight: cpu_state_dict shared one copy
                t = t.clone()
            seen.add(id(value))
            tensors[key] = t
        save_file(tensors, str(path), metadata={"format": "pt"})
    else:
        import numpy as np
        from safetensors.numpy import save_file

        save_file({k: np.ascontiguousarray(np.asarray(v)) for k, v in state.items()},
                  str(path), metadata={"format": "np"})


def delete_snapshot(path) -> bool:
    """Remove a snapshot directory; returns whether it existed."""
    path = Path(path)
    if not path.exists():
        return False
    shutil.rmtree(path, ignore_errors=True)
    return True


def clear_partial_snapshots(directory) -> list[str]:
    """Remove the temporary directories a crash left while snapshots were being made.

    A snapshot is built in a temporary sibling and renamed into place when complete
    (:func:`snapshot_directory`, :func:`write_state_dict`), so what is left with the
    temporary prefix is never a usable snapshot.

    Parameters
    ----------
    directory : str or path-like
        Where snapshots are made (nothing happens when it does not exist).

    Returns
    -------
    list of str
        The directories removed.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    removed = []
    for tmp in sorted(directory.glob(f"{_TMP_PREFIX}*")):
        shutil.rmtree(tmp, ignore_errors=True)
        removed.append(str(tmp))
    return removed


class SnapshotWriter:
    """One background thread that writes CPU state dicts to disk, in order.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> with SnapshotWriter() as w:
    ...     fut = w.submit({"w": np.ones(3, np.float32)}, os.path.join(d, "step-1"))
    ...     fut.result().method
    'safetensors'
    """

    def __init__(self):
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="cod-snapshot"
        )
        self._lock = threading.Lock()
        self._closed = False

    def submit(
        self,
        cpu_state: Mapping,
        dest,
        *,
        config_dir=None,
        on_done: Callable[[concurrent.futures.Future], None] | None = None,
    ) -> concurrent.futures.Future:
        """Queue a write; ``on_done(future)`` runs on the writer thread when it ends."""
        with self._lock:
            if self._closed:
                raise RuntimeError("SnapshotWriter is closed")
            fut = self._executor.submit(write_state_dict, cpu_state, dest, config_dir=config_dir)
        if on_done is not None:
            fut.add_done_callback(on_done)
        return fut

    def close(self, wait: bool = True) -> None:
        """Finish (``wait=True``) or abandon queued writes; idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._executor.shutdown(wait=wait, cancel_futures=not wait)

    def __enter__(self) -> SnapshotWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
