import json

import pytest

from cod_monitor.cli import main
from cod_monitor.cod.routing import ROUTES


@pytest.fixture(scope="module")
def ladder_dir(syn, tmp_path_factory):
    path = tmp_path_factory.mktemp("ladder")
    syn.ladder.save(path)
    return path


def run(argv, capsys):
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_predict_json_has_the_documented_shape(ladder_dir, syn, capsys):
    code, out, err = run(
        ["predict", "--ladder", str(ladder_dir), "--benchmark", "synthetic",
         "--target-compute", repr(syn.target.compute), "--json", "--n-bootstrap", "20"],
        capsys,
    )
    assert code == 0, err
    payload = json.loads(out)
    assert set(payload) == {"benchmark", "target_compute", "predictions", "route", "why",
                            "routes", "subset_share", "n_clusters", "transport",
                            "difficulty_reversals"}
    assert payload["route"] in payload["why"]
    assert [r["route"] for r in payload["routes"]] == list(ROUTES)
    assert payload["transport"] is None  # no --tokens-per-param, no --target
    # a synthetic ladder's difficulty is the sample's own: runs solve more, never fewer
    rev = payload["difficulty_reversals"]
    assert rev["solved"] > 0 and rev["reversed"] == 0 and rev["rate"] == 0.0
    cod = payload["predictions"]["cod"]
    lo, hi = cod["interval"]
    assert lo <= cod["value"] <= hi
    assert abs(cod["value"] - syn.expected_accuracy[syn.target.name]) < 0.05
    assert 0 < payload["subset_share"] < 1 and payload["n_clusters"] > 0


def test_predict_all_methods_and_target_by_name(ladder_dir, syn, capsys):
    code, out, err = run(
        ["predict", "--ladder", str(ladder_dir), "--benchmark", "synthetic",
         "--target", syn.target.name, "--method", "all", "--json", "--n-bootstrap", "5"],
        capsys,
    )
    # the synthetic ladder has no losses: loss-intermediate fails, alone, and exits 1
    assert code == 1 and "produced no forecast: loss-intermediate" in err
    payload = json.loads(out)
    from cod_monitor.methods import available_methods

    assert list(payload["predictions"]) == available_methods()
    assert payload["observed"] == pytest.approx(
        syn.ladder.matrix("synthetic", roles=("target",)).pass_rates.mean(), abs=1e-12
    )
    for name, entry in payload["predictions"].items():
        assert (entry["value"] is None) == ("error" in entry) == (name == "loss-intermediate"), name
    # progress on stderr, one line per method, so that stdout stays one JSON object
    n = len(available_methods())
    assert f"fitting {n} method(s) on 'synthetic'" in err
    assert f"[1/{n}] cod fitted in" in err and "loss-intermediate failed in" in err
    assert err.count("] ") == n


def test_predict_tokens_per_param_moves_a_mixed_recipe_ladder(tmp_path, capsys):
    from cod_monitor.synthetic import synthetic_mixed_recipe_ladder

    ladder, target, truth = synthetic_mixed_recipe_ladder(0, n_samples=150, benchmark="b")
    ladder.save(tmp_path)
    base = ["predict", "--ladder", str(tmp_path), "--benchmark", "b", "--json",
            "--n-bootstrap", "0", "--method", "cod"]
    code, out, err = run(base + ["--target", target.name], capsys)  # ratio from the target
    assert code == 0, err
    by_name = json.loads(out)
    assert by_name["transport"]["applied"] and by_name["transport"]["tokens_per_param"] == 2.0
    code, out, err = run(base + ["--target-compute", repr(target.compute),
                                 "--tokens-per-param", "2"], capsys)
    assert code == 0, err
    explicit = json.loads(out)
    assert explicit["predictions"]["cod"]["value"] == by_name["predictions"]["cod"]["value"]
    assert abs(explicit["predictions"]["cod"]["value"] - truth) < 0.02
    code, out, err = run(base + ["--target-compute", repr(target.compute)], capsys)
    plain = json.loads(out)
    assert plain["transport"] is None
    assert abs(plain["predictions"]["cod"]["value"] - truth) > 0.04
    with pytest.raises(SystemExit):
        main(base + ["--target-compute", "1e20", "--tokens-per-param", "-1"])
    assert "expected a positive finite number" in capsys.readouterr().err


def test_predict_table(ladder_dir, syn, capsys):
    code, out, _ = run(
        ["predict", "--ladder", str(ladder_dir), "--benchmark", "synthetic",
         "--target", syn.target.name, "--method", "cod", "--method", "cod-no-mapping",
         "--n-bootstrap", "5"],
        capsys,
    )
    assert code == 0
    assert "cod-no-mapping" in out and "90% interval" in out and "error (pts)" in out
    assert "extrapolatable" in out
    assert "cod route clusters+" in out or "cod route end-to-end" in out  # and why
    assert "premise check: difficulty reversals 0% (of " in out and "trust" not in out


def test_predict_flags_run_specific_difficulty(shuffled_syn_dir, syn, capsys):
    from cod_monitor.demo import SHIPPED_LADDER

    code, out, err = run(["predict", "--ladder", str(shuffled_syn_dir), "--benchmark", syn.benchmark,
                          "--target-compute", str(syn.target.compute), "--method", "e2e-exp",
                          "--n-bootstrap", "0"], capsys)
    assert code == 0, err
    assert "premise check: difficulty reversals" in out and "trust its forecast less" in out
    # the shipped demo ladder's headline difficulty is intrinsic: the premise holds
    code, out, err = run(["predict", "--ladder", str(SHIPPED_LADDER), "--benchmark", "demo",
                          "--target", "target-d96x3-s2128", "--method", "e2e-exp",
                          "--n-bootstrap", "0"], capsys)
    assert code == 0, err
    assert "premise check: difficulty reversals 2% (of 450 samples" in out
    assert "trust" not in out


@pytest.mark.parametrize(
    "extra, match",
    [
        (["--benchmark", "nope", "--target-compute", "1e23"], "nope"),
        (["--benchmark", "synthetic", "--target-compute", "1e23", "--method", "magic"], "--method"),
        (["--benchmark", "synthetic", "--target", "syn-12B"], "--target"),
        (["--benchmark", "synthetic", "--target-compute", "1e23", "--anchor", "ghost"], "ghost"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(ladder_dir, capsys, extra, match):
    code, out, err = run(["predict", "--ladder", str(ladder_dir), *extra], capsys)
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert match in err


def test_missing_ladder_directory(tmp_path, capsys):
    code, _, err = run(
        ["predict", "--ladder", str(tmp_path / "absent"), "--benchmark", "b",
         "--target-compute", "1e23"],
        capsys,
    )
    assert code == 2 and err.count("\n") == 1


def test_no_cluster_without_fallback_reports_error_in_json(tmp_path, capsys):
    from cod_monitor.synthetic import SyntheticCluster, synthetic_ladder

    syn = synthetic_ladder(
        n_samples=400, seed=3,
        clusters=(SyntheticCluster("inverse", 1.0, a=1.0, b=0.5, kind="inverse"),),
    )
    syn.ladder.save(tmp_path)
    argv = ["predict", "--ladder", str(tmp_path), "--benchmark", "synthetic",
            "--target-compute", "1e23", "--json", "--n-bootstrap", "5",
            "--method", "cod-paper", "--method", "cod"]
    code, out, _ = run(argv, capsys)
    assert code == 1  # cod-paper produced no forecast
    predictions = json.loads(out)["predictions"]
    paper = predictions["cod-paper"]
    assert paper["value"] is None and "no extrapolatable cluster" in paper["error"]
    # the default cod forecasts the whole set with the rest model instead of failing
    assert predictions["cod"]["value"] is not None
    code, out, _ = run(argv + ["--fallback", "end_to_end"], capsys)
    assert code == 0 and json.loads(out)["predictions"]["cod-paper"]["value"] is not None


def test_demo_runs_and_compares_with_truth(tmp_path, capsys):
    code, out, err = run(["demo", "--synthetic", "--n-samples", "600", "--n-bootstrap", "10", "--out", str(tmp_path)], capsys)
    assert code == 0, err
    assert "COD forecast" in out and "true expected accuracy" in out
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["abs_error_pts"] == pytest.approx(100 * abs(summary["forecast_final"] - summary["truth"]))
    assert (tmp_path / "ladder" / "ladder.json").exists()


# ------------------------------------------------------------- failure isolation (issue 14)

def _save_ladder(small_ladder, path, n, *, target, losses):
    """A ladder of ``n`` finished models saved to ``path``; with ``losses`` every ladder
    model gets a validation loss falling with compute in ladder.json (as a user adds it)."""
    ladder, bench, compute, _ = small_ladder(n, target, "fixed")
    ladder.save(path)
    if losses:
        meta = json.loads((path / "ladder.json").read_text())
        for m in meta["models"]:
            m["loss"] = 1.5 + 2.0 * (m["compute"] / 1e18) ** -0.1
        (path / "ladder.json").write_text(json.dumps(meta))
    return bench, compute


def test_predict_all_exits_0_when_every_method_forecasts_and_1_when_one_fails(
        small_ladder, tmp_path, capsys):
    from cod_monitor.methods import available_methods

    codes = {}
    for losses in (True, False):
        path = tmp_path / f"losses-{losses}"
        bench, compute = _save_ladder(small_ladder, path, 5, target=False, losses=losses)
        code, out, err = run(["predict", "--ladder", str(path), "--benchmark", bench,
                              "--target-compute", repr(compute), "--method", "all", "--json",
                              "--n-bootstrap", "0"], capsys)
        predictions = json.loads(out)["predictions"]
        assert list(predictions) == available_methods()
        failed = [name for name, p in predictions.items() if p["value"] is None]
        for name, p in predictions.items():
            assert "interval_error" in p and ("error" in p) == (name in failed), name
        codes[losses] = code, failed, err
    assert codes[True][:2] == (0, [])
    # without losses loss-intermediate cannot run: it fails alone, and the exit says so
    code, failed, err = codes[False]
    assert code == 1 and failed == ["loss-intermediate"]
    assert "produced no forecast: loss-intermediate" in err


def test_predict_json_reports_an_unavailable_interval(small_ladder, tmp_path, capsys):
    bench, compute = _save_ladder(small_ladder, tmp_path, 3, target=False, losses=False)
    code, out, err = run(["predict", "--ladder", str(tmp_path), "--benchmark", bench,
                          "--target-compute", repr(compute), "--json", "--n-bootstrap", "5",
                          "--method", "e2e-exp", "--method", "cod-paper",
                          "--fallback", "end_to_end"], capsys)
    # before issue 14 the backtests emptied the ladder and no method forecast at all
    assert code == 0, err
    predictions = json.loads(out)["predictions"]
    e2e = predictions["e2e-exp"]
    assert e2e["value"] is not None and e2e["interval"] is None and "error" not in e2e
    assert "no run to backtest" in e2e["interval_error"]
    boot = predictions["cod-paper"]  # a bootstrap interval: no backtest needed
    lo, hi = boot["interval"]
    assert boot["interval_error"] is None and lo <= boot["value"] <= hi
    code, out, _ = run(["predict", "--ladder", str(tmp_path), "--benchmark", bench,
                        "--target-compute", repr(compute), "--n-bootstrap", "5",
                        "--method", "e2e-exp"], capsys)
    assert code == 0 and "unavailable" in out and "interval unavailable: " in out


@pytest.mark.parametrize("option", ["--n-bootstrap", "--seed"])
def test_negative_counts_are_rejected_naming_the_option(ladder_dir, capsys, option):
    with pytest.raises(SystemExit) as exc:
        main(["predict", "--ladder", str(ladder_dir), "--benchmark", "synthetic",
              "--target-compute", "1e23", option, "-3"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}: expected a non-negative integer, got '-3'" in err
    assert "pass 0 or more" in err
