"""Faults injected into demo training: the LR multiplier per kind, the corrupted data, and
both applied by the Trainer (and the plain loop) as the schedule says."""

import json
import math

import pytest

from cod_monitor.demo.sabotage import (
    DATA_KINDS,
    DEFAULT_FACTORS,
    SABOTAGE_KINDS,
    Sabotage,
    shuffle_answers,
)
from cod_monitor.demo.tasks import STOP, TaskGenerator
from cod_monitor.exceptions import ParameterError

T = 200  # steps of a run in the pure tests


# ------------------------------------------------------------------------ the window


def test_kinds_defaults_and_window_in_steps():
    assert set(SABOTAGE_KINDS) == set(DEFAULT_FACTORS)
    assert Sabotage("lr_spike", 0.5, 0.55).factor == 20.0
    assert Sabotage("high_lr").factor == 3.0 and Sabotage("high_lr").steps(T) == (0, T)
    assert Sabotage("lr_spike", 0.5, 0.55).steps(T) == (100, 110)
    # 5% of 2,128 steps (the demo target) is 106 steps
    assert Sabotage("lr_spike", 0.5, 0.55).steps(2128) == (1064, 1170)
    # a window shorter than a step still holds one step
    assert Sabotage("lr_spike", 0.5, 0.501).steps(10) == (5, 6)
    assert Sabotage("corrupt", 0.99, 1.0).steps(10) == (9, 10)
    d = Sabotage("corrupt", 0.5, 0.6).to_dict(T)
    assert d == {"kind": "corrupt", "start": 0.5, "end": 0.6, "factor": 1.0,
                 "start_step": 100, "end_step": 120, "total_steps": T}
    assert "steps 101-110 of 200" in Sabotage("lr_spike", 0.5, 0.55).describe(T)


@pytest.mark.parametrize("kwargs, name", [
    ({"kind": "spike"}, "kind"),
    ({"kind": "lr_spike", "start": 1.0}, "start"),
    ({"kind": "lr_spike", "start": -0.1}, "start"),
    ({"kind": "lr_spike", "start": 0.5, "end": 0.5}, "end"),
    ({"kind": "lr_spike", "end": 1.5}, "end"),
    ({"kind": "lr_spike", "factor": 0}, "factor"),
    ({"kind": "high_lr", "factor": float("inf")}, "factor"),
    ({"kind": "slowdown", "factor": 1.0}, "factor"),
    ({"kind": "slowdown", "factor": 0.0}, "factor"),
    ({"kind": "corrupt", "factor": 1.5}, "factor"),
    ({"kind": "corrupt_ramp", "factor": 0.0}, "factor"),
])
def test_bad_sabotage_names_the_parameter_and_value(kwargs, name):
    with pytest.raises(ParameterError, match=f"'{name}' parameter of Sabotage"):
        Sabotage(**kwargs)


def test_sabotage_is_frozen():
    s = Sabotage("lr_spike", 0.5, 0.55)
    with pytest.raises(AttributeError):
        s.factor = 2.0


# ------------------------------------------------------------- the LR factor per kind


def test_lr_spike_multiplies_the_window_only():
    s = Sabotage("lr_spike", 0.5, 0.55, factor=20)
    f = [s.lr_factor(k, T) for k in range(T)]
    assert f[:100] == [1.0] * 100 and f[100:110] == [20.0] * 10 and f[110:] == [1.0] * 90
    assert not any(s.corrupts_step(k, T) for k in range(1, T + 1))


def test_high_lr_is_high_from_the_first_step():
    f = [Sabotage("high_lr", factor=3).lr_factor(k, T) for k in range(T)]
    assert f == [3.0] * T


def test_slowdown_falls_smoothly_from_one_to_the_factor_and_stays():
    s = Sabotage("slowdown", 0.4, 0.9, factor=0.02)
    f = [s.lr_factor(k, T) for k in range(T)]
    assert f[:81] == [1.0] * 81  # k = start_step runs at x1: the fall starts after it
    assert all(b <= a for a, b in zip(f, f[1:]))  # never rises
    assert f[180:] == pytest.approx([0.02] * 20)  # held after the window
    assert f[130] == pytest.approx(math.sqrt(0.02))  # half-way in log scale
    # smooth: the log-rate moves by at most pi/2 * |log factor| / (window steps) a step
    logs = [math.log(x) for x in f]
    assert max(abs(b - a) for a, b in zip(logs, logs[1:])) <= math.pi / 2 * abs(
        math.log(0.02)) / 100 + 1e-12


def test_corrupt_leaves_the_rate_and_marks_its_steps():
    s = Sabotage("corrupt", 0.5, 0.6)
    assert all(s.lr_factor(k, T) == 1.0 for k in range(T))
    marked = [step for step in range(1, T + 1) if s.corrupts_step(step, T)]
    assert marked == list(range(101, 121))
    assert {s.corrupt_share(step, T) for step in marked} == {1.0}
    assert s.corrupt_share(100, T) == s.corrupt_share(121, T) == 0.0
    # the LR kinds never touch the data
    assert not any(Sabotage(kind).corrupt_share(step, T) for kind in SABOTAGE_KINDS
                   if kind not in DATA_KINDS for step in range(1, T + 1))


def test_corrupt_ramp_raises_the_share_smoothly_and_holds_it():
    s = Sabotage("corrupt_ramp", 0.4, 0.9)  # default factor 0.5
    share = [s.corrupt_share(step, T) for step in range(1, T + 1)]
    assert share[:81] == [0.0] * 81  # steps 1..81 (k <= start_step) are clean
    assert all(b >= a for a, b in zip(share, share[1:]))
    assert share[130] == pytest.approx(0.25)  # half-way: half the final share
    assert share[180:] == pytest.approx([0.5] * 20)
    assert max(b - a for a, b in zip(share, share[1:])) <= math.pi / 2 * 0.5 / 100 + 1e-12
    assert all(s.lr_factor(k, T) == 1.0 for k in range(T))


# -------------------------------------------------------------------- corrupted data


def _split(text):
    """(prompt, answer) of each whole sample of a training text (the last is cut off)."""
    out = []
    for piece in text.split(STOP)[:-1]:
        prompt, _, answer = piece.partition("=")
        out.append((prompt + "=", answer))
    return out


def test_shuffle_answers_keeps_prompts_and_takes_the_next_answer():
    gen = TaskGenerator(seed=0, eval_size=60)
    clean = list(gen.train_samples(50, seed=7))
    bad = list(shuffle_answers(iter(clean)))
    assert len(bad) == 49  # one sample of look-ahead
    assert [s.prompt for s in bad] == [s.prompt for s in clean[:-1]]
    assert [s.answer for s in bad] == [s.answer for s in clean[1:]]
    assert sum(b.answer != c.answer for b, c in zip(bad, clean)) >= 40
    some = list(shuffle_answers(iter(clean), share=0.5, seed=3))
    changed = sum(b.answer != c.answer for b, c in zip(some, clean))
    assert 10 <= changed <= 40
    assert some == list(shuffle_answers(iter(clean), share=0.5, seed=3))  # seeded
    with pytest.raises(ParameterError, match="'share' parameter"):
        list(shuffle_answers(clean, share=0))


torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from cod_monitor.demo.recipe import make_spec  # noqa: E402
from cod_monitor.demo.tokenizer import build_tokenizer  # noqa: E402
from cod_monitor.demo.train import (  # noqa: E402
    SabotagedBlockDataset,
    TokenBlockDataset,
    train_run,
    train_target,
)


@pytest.fixture(scope="module")
def gen():
    return TaskGenerator(seed=0, eval_size=60)


def _text(ids):
    return build_tokenizer().decode(ids)


def test_a_corrupted_block_has_the_same_prompts_and_other_answers(gen):
    ds = TokenBlockDataset(gen, 8, 256, seed=3)
    for i in range(8):
        clean, bad = _split(_text(ds.block_ids(i))), _split(_text(ds.block_ids(i, corrupt_share=1)))
        n = min(len(clean), len(bad))
        assert n >= 3
        assert [p for p, _ in bad[:n]] == [p for p, _ in clean[:n]]
        # each answer is the next sample's answer
        assert [a for _, a in bad[:n - 1]] == [a for _, a in clean[1:n]]
        assert ds.block_ids(i, corrupt_share=1) == ds.block_ids(i, corrupt_share=1)


def test_sabotaged_dataset_differs_only_inside_the_window(gen):
    batch, steps = 4, 10
    base = TokenBlockDataset(gen, steps * batch, 128, seed=1)
    ds = SabotagedBlockDataset(base, Sabotage("corrupt", 0.3, 0.5), steps, batch)
    order = list(reversed(range(len(base))))  # consumption order, any permutation
    for position, i in enumerate(order):
        step = position // batch + 1
        got = ds[i]["input_ids"].tolist()
        if 3 < step <= 5:
            assert got == base.block_ids(i, corrupt_share=1.0) != base.block_ids(i), step
        else:
            assert got == base.block_ids(i), step
    assert ds.position == steps * batch and ds.corrupted == 2 * batch
    # other kinds read the blocks through
    plain = SabotagedBlockDataset(base, Sabotage("lr_spike", 0.3, 0.5), steps, batch)
    assert all(plain[i]["input_ids"].tolist() == base.block_ids(i) for i in range(len(base)))


def test_ramped_dataset_corrupts_a_growing_share_of_examples(gen):
    batch, steps, n = 4, 10, 12
    base = TokenBlockDataset(gen, steps * batch, 64 * n, seed=2)
    ds = SabotagedBlockDataset(base, Sabotage("corrupt_ramp", 0.2, 1.0, 1.0), steps, batch)
    changed = []
    for i in range(len(base)):  # read in index order: block i is step i // 4 + 1
        clean = _split(_text(base.block_ids(i)))
        got = _split(_text(ds[i]["input_ids"].tolist()))
        m = min(len(clean), len(got))
        assert [p for p, _ in got[:m]] == [p for p, _ in clean[:m]]  # prompts stay
        changed.append(sum(a != b for (_, a), (_, b) in zip(got[:m], clean[:m])) / m)
    per_step = [sum(changed[k * batch:(k + 1) * batch]) / batch for k in range(steps)]
    assert per_step[:3] == [0.0] * 3  # steps 1-3: k <= start_step 2
    assert per_step[-1] > 0.6 and per_step[3] < per_step[-1]
    assert ds.corrupted == 7 * batch


# ------------------------------------------------------------------- applied in training


def _lr_recorder():
    """A TrainerCallback recording the learning rate each optimizer step runs with."""
    from transformers import TrainerCallback

    class Recorder(TrainerCallback):
        def __init__(self):
            self.lrs = {}

        def on_step_begin(self, args, state, control, optimizer=None, **kw):
            self.lrs[state.global_step + 1] = optimizer.param_groups[0]["lr"]

    return Recorder()


@pytest.fixture(scope="module")
def spec():
    # 20 steps of 4 blocks, warm-up 10 steps
    return make_spec("sab", 32, 1, tokens=20 * 4 * 64, n_checkpoints=2, batch_size=4)


def _schedule(spec, step):
    k = step - 1
    return spec.learning_rate * (k / spec.warmup_steps if k < spec.warmup_steps else 1.0)


@pytest.mark.parametrize("sabotage", [None, Sabotage("lr_spike", 0.6, 0.75, 20),
                                      Sabotage("high_lr", factor=3),
                                      Sabotage("slowdown", 0.5, 1.0, 0.05)],
                         ids=["none", "lr_spike", "high_lr", "slowdown"])
def test_trainer_runs_every_step_at_schedule_times_the_factor(gen, spec, sabotage):
    rec = _lr_recorder()
    train_run(spec, gen, callbacks=[rec], sabotage=sabotage)
    assert sorted(rec.lrs) == list(range(1, spec.steps + 1))
    for step, lr in rec.lrs.items():
        factor = 1.0 if sabotage is None else sabotage.lr_factor(step - 1, spec.steps)
        assert lr == pytest.approx(_schedule(spec, step) * factor, rel=1e-12, abs=1e-15), step


def test_trainer_reads_every_block_once_and_corrupts_the_window(gen, spec):
    sab = Sabotage("corrupt", 0.5, 0.7)
    _, info = train_run(spec, gen, sabotage=sab)
    # every block read exactly once, in step order: block n belongs to step n // 4 + 1
    assert info["blocks_read"] == spec.steps * spec.batch_size
    assert info["corrupted_blocks"] == 4 * spec.batch_size
    _, loop = train_run(spec, gen, backend="loop", sabotage=sab)
    assert loop["corrupted_blocks"] == 4 * spec.batch_size


def test_loop_backend_applies_the_lr_factor(gen, spec):
    healthy, _ = train_run(spec, gen, backend="loop")
    spiked, _ = train_run(spec, gen, backend="loop", sabotage=Sabotage("lr_spike", 0.6, 0.75, 20))
    early, _ = train_run(spec, gen, backend="loop", sabotage=Sabotage("lr_spike", 0.95, 1.0, 1.0))
    w = "model.layers.0.mlp.up_proj.weight"
    h, s, e = (dict(m.named_parameters())[w] for m in (healthy, spiked, early))
    assert not torch.equal(h, s)
    assert torch.equal(h, e)  # a x1 "fault" changes nothing


def test_live_demo_sabotage_is_an_lr_jump_to_the_end(gen, tmp_path):
    from cod_monitor.demo.live import _live_sabotage, _sabotage_notice
    from cod_monitor.demo.live_config import LiveDemoConfig

    spec = make_spec("live", 32, 1, tokens=20 * 4 * 64, n_checkpoints=2, batch_size=4,
                     role="target")
    cfg = LiveDemoConfig(sabotage=True, sabotage_at=0.5, sabotage_factor=30.0)
    fault, at = _live_sabotage(cfg, spec.steps)
    assert (fault.kind, fault.factor, at) == ("lr_spike", 30.0, 10)
    assert fault.steps(spec.steps) == (10, 20)
    lines = []
    train_target(tmp_path, spec=spec, generator=gen, sabotage=fault,
                 callbacks=[_sabotage_notice(at, 30.0, lines.append)])
    assert len(lines) == 1 and lines[0].startswith("SABOTAGE: learning rate x30 from step 10 (now")
    history = json.loads((tmp_path / f"checkpoint-{spec.steps}" / "trainer_state.json")
                         .read_text())["log_history"]
    lrs = {h["step"]: h["learning_rate"] for h in history if "learning_rate" in h}
    # the Trainer logs at step s the rate step s ran with: steps 11 to 20 ran at x30
    assert sorted(lrs) == [5, 10, 15, 20]
    assert [lrs[5], lrs[10]] == pytest.approx([0.4 * spec.learning_rate,  # warm-up: k / 10
                                               0.9 * spec.learning_rate])
    assert [lrs[15], lrs[20]] == pytest.approx([30 * spec.learning_rate] * 2)
    # the last step: nothing left to sabotage, as before
    assert _live_sabotage(LiveDemoConfig(sabotage=True, sabotage_at=0.99), 20)[0] is None
