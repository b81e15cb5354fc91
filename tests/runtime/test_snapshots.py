"""Snapshots: hard links vs copies, atomic publication, deletion of the source, state dicts."""

import os
import shutil

import numpy as np
import pytest

from cod_monitor.runtime.snapshots import (
    SnapshotWriter,
    cpu_state_dict,
    delete_snapshot,
    snapshot_directory,
    write_state_dict,
)


@pytest.fixture
def checkpoint(tmp_path):
    """An HF-Trainer-like checkpoint directory."""
    ck = tmp_path / "out" / "checkpoint-100"
    (ck / "sub").mkdir(parents=True)
    (ck / "config.json").write_text('{"model_type": "llama"}')
    (ck / "model.safetensors").write_bytes(os.urandom(4096))
    (ck / "sub" / "extra.txt").write_text("nested")
    (ck / "optimizer.pt").write_bytes(b"o" * 100)
    (ck / "rng_state_0.pth").write_bytes(b"r")
    (ck / "trainer_state.json").write_text("{}")
    return ck


def _leftovers(parent):
    return [p.name for p in parent.iterdir() if p.name.startswith(".tmp-")]


def test_hard_links_skip_training_state(checkpoint, tmp_path):
    dest = tmp_path / "snaps" / "step-100"
    snap = snapshot_directory(checkpoint, dest)
    assert snap.method == "hardlink" and snap.path == str(dest)
    names = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert names == ["config.json", "model.safetensors", "sub/extra.txt", "trainer_state.json"]
    assert (dest / "model.safetensors").stat().st_ino == (checkpoint / "model.safetensors").stat().st_ino
    assert snap.n_files == 4 and snap.n_bytes == sum((dest / n).stat().st_size for n in names)
    assert _leftovers(dest.parent) == []


def test_copy_when_asked(checkpoint, tmp_path):
    snap = snapshot_directory(checkpoint, tmp_path / "snap", link=False)
    assert snap.method == "copy"
    assert (tmp_path / "snap" / "model.safetensors").stat().st_ino != (
        checkpoint / "model.safetensors").stat().st_ino
    assert (tmp_path / "snap" / "model.safetensors").read_bytes() == (
        checkpoint / "model.safetensors").read_bytes()


def test_copy_fallback_across_file_systems(checkpoint):
    shm = "/dev/shm"
    if not os.path.isdir(shm) or os.stat(shm).st_dev == os.stat(checkpoint).st_dev:
        pytest.skip("needs a second file system (/dev/shm) to make hard links fail")
    dest = os.path.join(shm, f"cod-test-{os.getpid()}", "step-100")
    try:
        snap = snapshot_directory(checkpoint, dest)
        assert snap.method == "copy"  # os.link raised EXDEV for every file
        with open(os.path.join(dest, "config.json")) as f:
            assert f.read() == '{"model_type": "llama"}'
    finally:
        shutil.rmtree(os.path.dirname(dest), ignore_errors=True)


def test_survives_deletion_of_the_source(checkpoint, tmp_path):
    """save_total_limit may delete the checkpoint right after on_save."""
    payload = (checkpoint / "model.safetensors").read_bytes()
    dest = tmp_path / "snap"
    snapshot_directory(checkpoint, dest)
    shutil.rmtree(checkpoint)
    assert (dest / "model.safetensors").read_bytes() == payload


def test_atomic_failure_leaves_nothing(checkpoint, tmp_path):
    (checkpoint / "dangling").symlink_to(tmp_path / "does-not-exist")
    dest = tmp_path / "snaps" / "step-100"
    with pytest.raises(FileNotFoundError):
        snapshot_directory(checkpoint, dest, link=False)  # copying follows the broken link
    assert not dest.exists()
    assert _leftovers(dest.parent) == []


def test_missing_source_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        snapshot_directory(tmp_path / "nope", tmp_path / "snap")


def test_stale_destination_is_replaced_and_extra_files_fill_in(checkpoint, tmp_path):
    dest = tmp_path / "snap"
    dest.mkdir()
    (dest / "half-written").write_text("stale")
    tok = tmp_path / "tokenizer"
    tok.mkdir()
    (tok / "tokenizer.json").write_text("{}")
    (tok / "config.json").write_text("not this one")
    snapshot_directory(checkpoint, dest, extra_from=tok)
    assert not (dest / "half-written").exists()
    assert (dest / "tokenizer.json").exists()
    assert (dest / "config.json").read_text() == '{"model_type": "llama"}'  # the checkpoint's wins
    assert delete_snapshot(dest) and not dest.exists() and not delete_snapshot(dest)


def test_state_dict_numpy_in_background(tmp_path):
    pytest.importorskip("safetensors")
    from safetensors.numpy import load_file

    weights = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(3, np.float32)}
    cpu = cpu_state_dict(weights)
    weights["w"] += 100  # training goes on: the copy must not change
    with SnapshotWriter() as writer:
        snap = writer.submit(cpu, tmp_path / "step-1").result(timeout=30)
    assert snap.method == "safetensors"
    loaded = load_file(str(tmp_path / "step-1" / "model.safetensors"))
    np.testing.assert_array_equal(loaded["w"], np.arange(6, dtype=np.float32).reshape(2, 3))


def test_state_dict_torch_with_config_and_tied_weights(tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("safetensors")
    from safetensors import safe_open
    from safetensors.torch import load_file

    emb = torch.nn.Embedding(5, 4)
    head = torch.nn.Linear(4, 5, bias=False)
    head.weight = emb.weight  # tied, as in the demo's Llama models
    sd = {"embed.weight": emb.weight, "head.weight": head.weight}
    cpu = cpu_state_dict(sd)
    assert cpu["embed.weight"] is cpu["head.weight"]  # copied once
    with torch.no_grad():
        emb.weight.add_(1.0)
    assert not torch.equal(cpu["embed.weight"], emb.weight)

    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "config.json").write_text("{}")
    (cfg / "tokenizer.json").write_text("{}")
    (cfg / "model.safetensors").write_bytes(b"old weights must not be copied")
    snap = write_state_dict(cpu, tmp_path / "snap", config_dir=cfg)
    assert sorted(os.listdir(snap.path)) == ["config.json", "model.safetensors", "tokenizer.json"]
    loaded = load_file(os.path.join(snap.path, "model.safetensors"))
    assert torch.equal(loaded["embed.weight"], loaded["head.weight"])
    assert torch.equal(loaded["embed.weight"], cpu["embed.weight"])
    with safe_open(os.path.join(snap.path, "model.safetensors"), "pt") as f:
        assert f.metadata() == {"format": "pt"}  # what transformers' from_pretrained requires


def test_state_dict_rejects_other_values():
    with pytest.raises(TypeError, match="should be a torch tensor or a numpy array"):
        cpu_state_dict({"w": [1, 2, 3]})
