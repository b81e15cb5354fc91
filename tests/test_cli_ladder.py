"""Tests of ``cod-monitor ladder import|info|validate`` through the command line entry point."""

import json

import pytest

from cod_monitor.cli import main
from cod_monitor.ladder import Ladder

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
