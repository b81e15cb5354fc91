"""Tests of ``cod-monitor ladder import|info|validate`` through the command line entry point."""

import json

import numpy as np
import pytest

from cod_monitor.cli import main
from cod_monitor.ladder import EvalSettings, Ladder

MODELS_CSV = """\
model,params_total,step,tokens,compute_6ND
pythia-14m@step1,14067712,1,2097152,177012782137344
pythia-70m@step143000,70426624,143000,299892736000,126722597751619584000
pythia-160m@step143000,162322944,143000,299892736000,292076830750408704000
pythia-410m@step143000,405334016,143000,299892736000,729340362312646656000
pythia-1b@step143000,1011781632,143000,299892736000,1820555771130150912000
"""
SCORES_CSV = "problem_id,model,n_samples,n_correct,pass_rate\n" + "".join(
    f"{p},pythia-{size}@step143000,10000,{c},{c / 10000!r}\n"
    for size, counts in (("1b", (122, 32, 167)), ("410m", (41, 7, 60)),
                         ("160m", (9, 0, 13)), ("70m", (2, 0, 1)))
    for p, c in zip((82, 142, 188), counts)
)
LONG_ARGS = ["--model-map", "name=model", "--model-map", "params=params_total",
             "--model-map", "compute=compute_6ND", "--map", "sample_id=problem_id",
             "--map", "score=pass_rate", "--benchmark", "math"]


def run(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def files(tmp_path):
    (tmp_path / "models.csv").write_text(MODELS_CSV)
    (tmp_path / "scores.csv").write_text(SCORES_CSV)
    return tmp_path


def import_long(files, capsys, *extra):
    return run(["ladder", "import", "--format", "long", "--scores", str(files / "scores.csv"),
                "--models", str(files / "models.csv"), *LONG_ARGS,
                "--out", str(files / "out"), *extra], capsys)


def assert_one_line_error(code, err, *fragments):
    assert code == 2
    assert "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith("cod-monitor ladder: error: ")
    for fragment in fragments:
        assert fragment in err


def test_import_long_then_info_and_validate(files, capsys):
    code, out, err = import_long(files, capsys, "--role", "pythia-1b@step143000=target",
                                 "--compress")
    assert code == 0, err
    assert "4 models: 3 ladder, 1 target" in out
    assert (files / "out" / "scores.csv.gz").is_file()
    ladder = Ladder.load(files / "out")
    assert ladder.model("pythia-1b@step143000").role == "target"
    assert ladder.matrix("math").pass_rates.shape == (3, 3)

    code, out, err = run(["ladder", "info", str(files / "out")], capsys)
    assert code == 0, err
    assert "pythia-1b@step143000" in out and "target" in out
    assert "math: 3 samples (with n_samples/n_correct)" in out
    assert "1.821e+21" in out  # compute in FLOPs
    assert "tokens per parameter (final checkpoints of 3 ladder runs)" in out
    assert "one recipe" in out  # Pythia: 300B tokens for every size

    code, out, err = run(["ladder", "validate", str(files / "out")], capsys)
    assert code == 0, err
    assert out.startswith("ok: ")


def test_import_refuses_to_overwrite_a_ladder_without_force(files, capsys):
    assert import_long(files, capsys)[0] == 0
    before = (files / "out" / "ladder.json").read_text()
    code, _, err = import_long(files, capsys, "--role", "pythia-1b@step143000=target")
    assert_one_line_error(code, err, f"invalid --out = '{files / 'out'}'",
                          "It already holds a ladder (ladder.json, scores.csv); pass --force")
    assert (files / "out" / "ladder.json").read_text() == before  # untouched
    code, out, err = import_long(files, capsys, "--role", "pythia-1b@step143000=target", "--force")
    assert code == 0, err
    assert Ladder.load(files / "out").model("pythia-1b@step143000").role == "target"
    (files / "empty").mkdir()  # a directory without a ladder is fine
    code, _, err = run(["ladder", "import", "--format", "long", "--scores", str(files / "scores.csv"),
                        "--models", str(files / "models.csv"), *LONG_ARGS,
                        "--out", str(files / "empty")], capsys)
    assert code == 0, err


def test_import_lm_eval(tmp_path, capsys):
    (tmp_path / "models.csv").write_text(
        "name,params,tokens\nlm-0,1e8,2e9\nlm-1,4e8,8e9\nlm-2,1.6e9,3.2e10\n"
    )
    argv = ["ladder", "import", "--format", "lm-eval", "--models", str(tmp_path / "models.csv"),
            "--filter", "strict-match", "--rename", "gsm8k=gsm8k-cot", "--out",
            str(tmp_path / "out")]
    for i in range(3):
        d = tmp_path / f"lm-{i}"
        d.mkdir()
        lines = []
        for doc in range(3):
            for filt, value in (("flexible-extract", 1.0), ("strict-match", float(doc < i))):
                lines.append(json.dumps({"doc_id": doc, "filter": filt, "metrics": ["exact_match"],
                                         "exact_match": value, "resps": [["x"]],
                                         "filtered_resps": ["x"], "target": "x"}))
        (d / "samples_gsm8k_2024-05-01T12-00-00.123456.jsonl").write_text("\n".join(lines) + "\n")
        argv += ["--model", f"lm-{i}={d}"]
    code, out, err = run(argv, capsys)
    assert code == 0, err
    ladder = Ladder.load(tmp_path / "out")
    assert ladder.benchmarks == ["gsm8k-cot"]
    assert ladder.matrix("gsm8k-cot").pass_rates[:, 2].tolist() == [1.0, 1.0, 0.0]


@pytest.mark.parametrize(
    "extra, fragments",
    [
        (["--map", "sample_id"], ["--map", "ours=theirs"]),
        (["--map", "=problem_id"], ["--map"]),
        (["--role", "pythia-1b@step143000"], ["--role", "NAME=ROLE"]),
        (["--role", "ghost=target"], ["roles", "ghost"]),
        (["--role", "pythia-1b@step143000=judge"], ["role = 'judge'"]),
        (["--map", "n_samples=trials"], ["n_samples=trials", "no column"]),
        (["--model", "a=b"], ["--model does not apply"]),
        (["--compute-unit", "-1"], ["compute_unit"]),
    ],
)
def test_bad_import_options_exit_2_with_one_line(files, capsys, extra, fragments):
    code, out, err = import_long(files, capsys, *extra)
    assert_one_line_error(code, err, *fragments)


def test_import_needs_scores_for_long_and_model_for_lm_eval(files, capsys):
    code, _, err = run(["ladder", "import", "--format", "long", "--models",
                        str(files / "models.csv"), "--out", str(files / "o")], capsys)
    assert_one_line_error(code, err, "--scores")
    code, _, err = run(["ladder", "import", "--format", "lm-eval", "--models",
                        str(files / "models.csv"), "--out", str(files / "o")], capsys)
    assert_one_line_error(code, err, "--model")
    code, _, err = run(["ladder", "import", "--format", "lm-eval", "--models",
                        str(files / "models.csv"), "--model", "x", "--out", str(files / "o")],
                       capsys)
    assert_one_line_error(code, err, "NAME=PATH")


def test_bad_files_exit_2_with_one_line(files, capsys):
    code, _, err = run(["ladder", "import", "--format", "long", "--scores",
                        str(files / "missing.csv"), "--models", str(files / "models.csv"),
                        *LONG_ARGS, "--out", str(files / "o")], capsys)
    assert_one_line_error(code, err, "missing.csv")
    (files / "garbage.csv.gz").write_bytes(b"\x1f\x8b\x00garbage")
    code, _, err = run(["ladder", "import", "--format", "long", "--scores",
                        str(files / "garbage.csv.gz"), "--models", str(files / "models.csv"),
                        *LONG_ARGS, "--out", str(files / "o")], capsys)
    assert_one_line_error(code, err, "garbage.csv.gz")


def test_validate_reports_a_broken_ladder(files, capsys):
    assert import_long(files, capsys)[0] == 0
    scores = files / "out" / "scores.csv"
    lines = scores.read_text().splitlines()
    lines[3] = lines[3].rsplit(",", 3)[0] + ",nan,,"
    scores.write_text("\n".join(lines) + "\n")
    code, out, err = run(["ladder", "validate", str(files / "out")], capsys)
    assert_one_line_error(code, err, "invalid score = 'nan'", "scores.csv:4")
    code, _, err = run(["ladder", "info", str(files / "nowhere")], capsys)
    assert_one_line_error(code, err, "path")


def test_drop_incomplete_flag(files, capsys):
    text = "".join(line + "\n" for line in SCORES_CSV.splitlines() if "188,pythia-70m" not in line)
    (files / "scores.csv").write_text(text)
    code, _, err = import_long(files, capsys)
    assert_one_line_error(code, err, "--drop-incomplete")
    with pytest.warns(UserWarning, match="dropped 1 of 3"):
        code, _, err = import_long(files, capsys, "--drop-incomplete")
    assert code == 0, err


def test_info_points_a_mixed_recipe_ladder_to_tokens_per_param(tmp_path, capsys):
    from cod_monitor.synthetic import synthetic_mixed_recipe_ladder

    ladder, _, _ = synthetic_mixed_recipe_ladder(0, n_samples=40)
    ladder.save(tmp_path)
    code, out, err = run(["ladder", "info", str(tmp_path)], capsys)
    assert code == 0, err
    assert "final checkpoints of 12 ladder runs): 2 to 32; mixed recipes" in out
    assert "--tokens-per-param" in out


def test_info_reports_difficulty_reversals(shuffled_syn_dir, capsys):
    from cod_monitor.demo import SHIPPED_LADDER

    code, out, err = run(["ladder", "info", str(SHIPPED_LADDER)], capsys)
    assert code == 0, err
    lines = {line.split(":")[0].strip(): line for line in out.splitlines() if "samples;" in line}
    assert "no ladder run solves a sample" in lines["add"]
    # intrinsic difficulty: 8 of the 450 samples a ladder run solves are failed by the
    # next larger run (measured on the shipped ladder, two training runs per size)
    assert "difficulty reversals 2% (of 450 samples solved by a ladder run, 8 failed" in lines["sort"]
    assert not any("trust" in line for line in lines.values())
    code, out, err = run(["ladder", "info", str(shuffled_syn_dir)], capsys)
    assert code == 0, err
    line = next(line for line in out.splitlines() if "samples;" in line)
    assert "above 10%" in line and "trust its forecast less" in line


# ------------------------------------------------------------ evaluation settings


def test_import_records_eval_settings_and_info_prints_them(files, capsys):
    code, out, err = import_long(files, capsys, "--eval-settings",
                                 '{"stop": "\\n", "scorer": "last_number", "mode": "sampled", '
                                 '"n": 10000, "temperature": 0.6, "top_p": 0.95}')
    assert code == 0, err
    settings = Ladder.load(files / "out").eval_settings_for("math")
    assert settings == EvalSettings(stop="\n", scorer="last_number", mode="sampled", n=10000,
                                    temperature=0.6, top_p=0.95)
    assert "math: stop '\\n', scorer 'last_number', mode 'sampled', n 10000" in out
    code, out, err = run(["ladder", "info", str(files / "out")], capsys)
    assert code == 0, err
    assert "evaluation settings:\n  math: stop '\\n', scorer 'last_number'" in out
    code, out, err = run(["ladder", "validate", str(files / "out")], capsys)
    assert code == 0, err
    assert "evaluation settings recorded for 1 of 1 benchmark(s): math" in out
    # per benchmark, from a file; null stop: no stop marker
    (files / "settings.json").write_text(json.dumps({"math": {"stop": None, "mode": "exact"}}))
    code, out, err = import_long(files, capsys, "--force", "--eval-settings",
                                 str(files / "settings.json"))
    assert code == 0, err
    assert Ladder.load(files / "out").eval_settings_for("math") == EvalSettings(stop=None,
                                                                               mode="exact")
    # without the option nothing is recorded, and info says how to record it
    code, out, err = import_long(files, capsys, "--force")
    assert code == 0, err
    assert "  math: not recorded" in out and "--eval-settings" in out


@pytest.mark.parametrize(
    "value, fragments",
    [
        ('{"top_k": 50}', ["invalid top_k = 50", "evaluation settings have only the keys"]),
        ('{"mode": "greedy"}', ["invalid mode = 'greedy'"]),
        ('{"gsm8k": {"mode": "exact"}}', ["invalid eval_settings = 'gsm8k'", "'math'"]),
        ('{"mode": ', ["invalid --eval-settings", "Fix the JSON"]),
        ("nowhere.json", ["invalid --eval-settings = 'nowhere.json'", "no such file"]),
        ('["exact"]', ["invalid --eval-settings = ['exact']", "JSON object"]),
    ],
)
def test_bad_eval_settings_exit_2_with_one_line(files, capsys, value, fragments):
    code, _, err = import_long(files, capsys, "--eval-settings", value)
    assert_one_line_error(code, err, *fragments)
    assert not (files / "out").exists()


def test_import_lm_eval_merges_eval_settings_with_what_the_logs_tell(tmp_path, capsys):
    (tmp_path / "models.csv").write_text(
        "name,params,tokens\nlm-0,1e8,2e9\nlm-1,4e8,8e9\nlm-2,1.6e9,3.2e10\n")
    argv = ["ladder", "import", "--format", "lm-eval", "--models", str(tmp_path / "models.csv"),
            "--eval-settings", '{"scorer": "exact"}', "--out", str(tmp_path / "out")]
    for i in range(3):
        d = tmp_path / f"lm-{i}"
        d.mkdir()
        lines = [json.dumps({"doc_id": doc, "filter": "none", "metrics": ["exact_match"],
                             "exact_match": float(doc < i), "target": "x",
                             "arguments": {"gen_args_0": {"arg_0": "Q:", "arg_1": {
                                 "until": ["\n"], "do_sample": False}}}})
                 for doc in range(3)]
        (d / "samples_arith_2024-05-01T12-00-00.jsonl").write_text("\n".join(lines) + "\n")
        argv += ["--model", f"lm-{i}={d}"]
    code, out, err = run(argv, capsys)
    assert code == 0, err
    assert Ladder.load(tmp_path / "out").eval_settings_for("arith") == EvalSettings(
        stop="\n", scorer="exact", mode="sampled", temperature=0.0)
    argv_conflict = [a if a != '{"scorer": "exact"}' else '{"temperature": 1.0}' for a in argv]
    argv_conflict[argv_conflict.index("--out") + 1] = str(tmp_path / "again")
    code, _, err = run(argv_conflict, capsys)
    assert_one_line_error(code, err, "invalid temperature = 1.0", "contradicts the value 0.0")


def test_validate_rejects_settings_of_the_wrong_type(files, capsys):
    assert import_long(files, capsys, "--eval-settings", '{"mode": "exact"}')[0] == 0
    meta = json.loads((files / "out" / "ladder.json").read_text())
    meta["eval_settings"]["math"]["top_p"] = "0.7"
    (files / "out" / "ladder.json").write_text(json.dumps(meta))
    code, _, err = run(["ladder", "validate", str(files / "out")], capsys)
    assert_one_line_error(code, err, "eval_settings['math']: invalid top_p = '0.7'",
                          "Give top_p as a number in (0, 1]")


# ------------------------------------------------------------------ ladder score


def _tinylm():
    """tests/evaluators/tinylm.py: tiny char-level Llama models built here, no download."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent / "evaluators" / "tinylm.py"
    spec = importlib.util.spec_from_file_location("tinylm", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny_ladder_files(tmp_path_factory):
    """Four checkpoints of one tiny Llama (after 0, 3, 6 and 12 short training steps), a
    models table naming them by relative path, and a 24-prompt evaluation set."""
    for mod in ("torch", "transformers", "tokenizers"):
        pytest.importorskip(mod)
    import torch

    from cod_monitor.evaluators import EvalSet

    tinylm = _tinylm()
    root = tmp_path_factory.mktemp("tiny_ladder")
    eval_set = EvalSet.from_records(tinylm.make_tasks(24, seed=1), name="tiny", stop=tinylm.STOP)
    eval_set.to_jsonl(root / "tiny.jsonl")
    rows = ["name,params,tokens,step,role,path"]
    with torch.random.fork_rng():
        tok = tinylm.build_char_tokenizer()
        model = tinylm.build_tiny_llama(len(tok), seed=0)
        params = sum(p.numel() for p in model.parameters())
        done = 0
        for step, role in ((0, "ladder"), (3, "ladder"), (6, "ladder"), (12, "target")):
            if step > done:
                tinylm.train(model, tok, steps=step - done, batch=16, lr=1e-2,
                             exclude=set(eval_set.prompts), seed=step)
                done = step
            tinylm.save_checkpoint(model, tok, root / "ckpt" / f"step-{step}")
            rows.append(f"tiny-s{step},{params},{(step + 1) * 4096},{step},{role},ckpt/step-{step}")
    (root / "models.csv").write_text("\n".join(rows) + "\n")
    return root, eval_set


def _score(root, capsys, out, *extra):
    return run(["ladder", "score", "--models", str(root / "models.csv"), "--out", str(out),
                *extra], capsys)


def test_score_writes_a_ladder_with_the_evaluators_pass_rates_and_settings(
        tiny_ladder_files, tmp_path, capsys):
    from cod_monitor.evaluators import HFEvaluator
    from cod_monitor.exceptions import InputError
    from cod_monitor.monitor.checks import check_eval_sets

    root, eval_set = tiny_ladder_files
    config = {"backend": "hf", "mode": "exact", "top_p": 1.0}
    code, out, err = _score(root, capsys, tmp_path / "lad", "--eval-set",
                            f"tiny={root / 'tiny.jsonl'}", "--stop", "\\n",
                            "--evaluator", json.dumps(config))
    assert code == 0, err
    progress = [line for line in err.splitlines() if line.startswith("[")]
    assert [line.split("]")[0] for line in progress] == ["[1/4", "[2/4", "[3/4", "[4/4"]
    assert all(line.endswith("s elapsed)") and "tiny 0." in line for line in progress)
    assert "tiny: stop '\\n', scorer 'exact', mode 'exact', temperature 1.0, top_p 1.0" in out

    code, out, err = run(["ladder", "validate", str(tmp_path / "lad")], capsys)
    assert code == 0, err
    assert "evaluation settings recorded for 1 of 1 benchmark(s): tiny" in out
    ladder = Ladder.load(tmp_path / "lad")
    assert ladder.eval_settings_for("tiny") == EvalSettings(
        stop="\n", scorer="exact", mode="exact", temperature=1.0, top_p=1.0)
    mat = ladder.matrix("tiny", roles=("ladder", "target"))
    assert mat.model_names == ["tiny-s0", "tiny-s3", "tiny-s6", "tiny-s12"]
    assert ladder.model("tiny-s12").role == "target"
    evaluator = HFEvaluator(mode="exact", top_p=1.0)
    for j, step in enumerate((0, 3, 6, 12)):
        direct = evaluator.evaluate(str(root / "ckpt" / f"step-{step}"), eval_set)
        assert list(direct.sample_ids) == list(mat.sample_ids)
        np.testing.assert_allclose(mat.pass_rates[:, j], direct.pass_rates, rtol=1e-12, atol=0)
    assert len({tuple(col) for col in mat.pass_rates.T}) == 4  # four different models

    # a monitor given the same set and evaluator passes its check; another top_p does not
    spec = {"tiny": {"path": str(root / "tiny.jsonl"), "stop": "\n"}}
    check_eval_sets(ladder, spec, config)
    with pytest.raises(InputError, match=r"top_p: the ladder 1.0, the run 0.7 \(the "
                                         r"evaluator's default"):
        check_eval_sets(ladder, spec, {"backend": "hf", "mode": "exact"})


def test_score_in_sampled_mode_records_counts_n_and_the_budget(tiny_ladder_files, tmp_path,
                                                               capsys):
    from cod_monitor.evaluators import HFEvaluator

    root, eval_set = tiny_ladder_files
    (tmp_path / "evaluator.json").write_text(json.dumps({"mode": "sampled", "n": 3, "seed": 1}))
    spec = json.dumps({"path": str(root / "tiny.jsonl"), "stop": "\n"})
    code, out, err = _score(root, capsys, tmp_path / "lad", "--eval-set", f"tiny={spec}",
                            "--evaluator", str(tmp_path / "evaluator.json"), "--quiet",
                            "--compress")
    assert code == 0, err
    assert not any(line.startswith("[") for line in err.splitlines())  # --quiet
    ladder = Ladder.load(tmp_path / "lad")
    assert (tmp_path / "lad" / "scores.csv.gz").is_file()
    assert ladder.eval_settings_for("tiny") == EvalSettings(
        stop="\n", scorer="exact", mode="sampled", n=3, temperature=1.0, top_p=0.7,
        max_new_tokens=None)
    mat = ladder.matrix("tiny", roles=("ladder", "target"))
    assert (mat.n_samples == 3).all()
    direct = HFEvaluator(mode="sampled", n=3, seed=1).evaluate(
        str(root / "ckpt" / "step-12"), eval_set)
    np.testing.assert_array_equal(mat.n_correct[:, 3], direct.n_correct)


def test_score_warns_when_every_sample_scores_zero(tiny_ladder_files, tmp_path, capsys):
    # a stop marker the models never write: every sampled completion runs on past the
    # answer and scores 0, which is said, not written silently
    root, _ = tiny_ladder_files
    spec = json.dumps({"path": str(root / "tiny.jsonl"), "stop": "###"})
    evaluator = json.dumps({"mode": "sampled", "n": 2, "seed": 1, "max_new_tokens": 6})
    code, out, err = _score(root, capsys, tmp_path / "lad", "--eval-set", f"tiny={spec}",
                            "--evaluator", evaluator, "--quiet")
    assert code == 0, err
    assert not Ladder.load(tmp_path / "lad").matrix("tiny", roles=("ladder", "target")) \
        .pass_rates.any()
    assert "warning: every sample of 'tiny' scored 0 on every ladder model" in err
    assert "stop marker (now '###')" in err
    # with the models' own stop marker there is no such warning
    code, _, err = _score(root, capsys, tmp_path / "ok", "--eval-set",
                          f"tiny={root / 'tiny.jsonl'}", "--stop", "\\n", "--quiet",
                          "--evaluator", json.dumps({"mode": "exact"}))
    assert code == 0, err
    assert "scored 0" not in err


@pytest.mark.parametrize(
    "extra, fragments",
    [
        ([], ["invalid --eval-set = None", "--eval-set BENCH=PATH"]),
        (["--eval-set", "tiny"], ["invalid --eval-set = 'tiny'", "BENCH=PATH"]),
        (["--eval-set", 'tiny={"path": "x.jsonl", "stopp": "\\n"}'], ["unknown: ['stopp']"]),
        (["--eval-set", "tiny=missing.jsonl"], ["missing.jsonl"]),
        (["--eval-set", "tiny=T", "--evaluator", '{"mode": "exacto"}'],
         ["'mode' parameter of HFEvaluator"]),
        (["--eval-set", "tiny=T", "--evaluator", '{"top_k": 5}'], ["Unknown key(s) ['top_k']"]),
        (["--eval-set", "tiny=T", "--role", "tiny-s6=target"],
         ["2 model(s) with role 'ladder'"]),
    ],
)
def test_score_checks_its_inputs_before_scoring(tiny_ladder_files, tmp_path, capsys, extra,
                                                fragments):
    root, _ = tiny_ladder_files
    extra = [str(root / "tiny.jsonl") if a == "tiny=T" else a for a in extra]
    extra = ["tiny=" + a if a == str(root / "tiny.jsonl") else a for a in extra]
    code, _, err = _score(root, capsys, tmp_path / "lad", *extra)
    assert_one_line_error(code, err, *fragments)
    assert not (tmp_path / "lad").exists()


def test_score_refuses_a_missing_checkpoint_and_an_existing_ladder(tiny_ladder_files, tmp_path,
                                                                  capsys):
    root, _ = tiny_ladder_files
    # absolute paths: a relative one is read from the table's own directory
    table = (root / "models.csv").read_text().replace(",ckpt/", f",{root}/ckpt/")
    table = table.replace("ckpt/step-3", "ckpt/step-4")
    (tmp_path / "models.csv").write_text(table)
    code, _, err = run(["ladder", "score", "--models", str(tmp_path / "models.csv"),
                        "--eval-set", f"tiny={root / 'tiny.jsonl'}", "--out",
                        str(tmp_path / "lad")], capsys)
    assert_one_line_error(code, err, "model 'tiny-s3': invalid path = ",
                          "step-4", "(this path is missing)")
    (tmp_path / "models.csv").write_text(table.replace(f",{root}/ckpt/step-4", ","))
    code, _, err = run(["ladder", "score", "--models", str(tmp_path / "models.csv"),
                        "--eval-set", f"tiny={root / 'tiny.jsonl'}", "--out",
                        str(tmp_path / "lad")], capsys)
    assert_one_line_error(code, err, "model 'tiny-s3': invalid path = None",
                          "'path' column")
    (tmp_path / "lad").mkdir()
    (tmp_path / "lad" / "ladder.json").write_text("{}")
    code, _, err = _score(root, capsys, tmp_path / "lad", "--eval-set",
                          f"tiny={root / 'tiny.jsonl'}")
    assert_one_line_error(code, err, "It already holds a ladder (ladder.json); pass --force")
    assert (tmp_path / "lad" / "ladder.json").read_text() == "{}"  # untouched
