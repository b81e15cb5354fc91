"""The bad-input table: malformed inputs at every public surface, each refused with a
named error.

Each row is ``(id, call, error, expected)``: ``call(ctx)`` must raise ``error`` whose
message holds every string of ``expected``: the field (parameter, flag, file or key),
the value given and the fix. cod_monitor words a fix in one of two ways: the
parameter sentence of :class:`~cod_monitor.exceptions.ParameterError` ("The 'x'
parameter of X must be ... Got ... instead.", the "must be" being the fix, followed by a
hint where it is not obvious), and an imperative sentence after the value for data
errors (:class:`~cod_monitor.exceptions.LadderValidationError`: "Give ...", "Use ...",
"Remove ...", "Pass ..."). Command-line rows run ``cod-monitor`` in this process and
expect exit code 2 with one paragraph on stderr and no traceback.
"""

import json
import math
from collections import namedtuple

import pytest

from cod_monitor.evaluators import (
    CorruptCheckpointError,
    EvalSet,
    EvalSetValidationError,
    EvaluatorConfigError,
    HFEvaluator,
)
from cod_monitor.exceptions import InputError, LadderValidationError, ParameterError
from cod_monitor.integrations.hf import CallbackArgumentsError, CODCallback
from cod_monitor.ladder import Ladder
from cod_monitor.monitor import (
    CheckpointConfig,
    CODMonitor,
    DriftConfig,
    ForecastConfig,
    PoolConfig,
    QueuePolicy,
    RunGeometry,
)
from cod_monitor.records import Checkpoint
from cod_monitor.trackers.local import LocalTracker

from badinput_context import BENCH, CLIFailed, Refused

Row = namedtuple("Row", "id call error expected")


def param(owner, name, value):
    """What a ParameterError about ``name`` of ``owner`` says: the field, the value, the fix."""
    return [f"The {name!r} parameter of {owner} must be", f"Got {value} instead."]


def param_path(owner, name, tail):
    """What a ParameterError about a path ending in ``tail`` says."""
    return [f"The {name!r} parameter of {owner} must be", "Got '", f"{tail}' instead."]


def field(name, value, fix):
    """What a LadderValidationError says: ``invalid <field> = <value>. <Fix> ...``."""
    return [f"invalid {name} = {value}.", fix]


def set_model(i, key, value):
    def edit(data):
        data["models"][i][key] = value
    return edit


def drop_model_key(i, key):
    def edit(data):
        del data["models"][i][key]
    return edit


def set_top(key, value):
    def edit(data):
        data[key] = value
    return edit


def first_row(old, new):
    """Replace ``old`` by ``new`` in the first data row of scores.csv."""
    return lambda lines: [lines[0], lines[1].replace(old, new, 1)] + lines[2:]


def monitor(ctx, **kw):
    """A CODMonitor of the valid ladder and evaluation set, with ``kw`` changed."""
    args = {"ladder": ctx.ladder, "eval_sets": {BENCH: str(ctx.eval_set)}, **kw}
    return CODMonitor(**args)


def callback(ctx, **kw):
    return CODCallback(**{"ladder": ctx.ladder, "eval_sets": {BENCH: str(ctx.eval_set)}, **kw})


def predict(ctx, *flags):
    return ctx.cli("predict", "--ladder", ctx.ladder, "--benchmark", BENCH, *flags)


def live_demo(ctx, *flags):
    # a fresh --out and a ladder that does not exist: should a flag ever pass its check,
    # the row fails on the ladder at once instead of training the demo
    return ctx.cli("demo", "--no-wandb", "--quiet", "--out", ctx.fresh("demo"),
                   "--ladder", ctx.fresh("no-ladder"), *flags)


def synthetic_demo(ctx, *flags):
    return ctx.cli("demo", "--synthetic", "--n-bootstrap", "0", *flags)


def ladder_import(ctx, *flags, scores=True):
    base = ["ladder", "import", "--format", "long", "--models", ctx.models_csv,
            "--out", ctx.fresh("imported")]
    return ctx.cli(*base, *(["--scores", ctx.scores_csv] if scores else []), *flags)


def truncate(path, keep=0.5):
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * keep)])


def load(checkpoint):
    from cod_monitor.evaluators.loading import load_hf_checkpoint

    return load_hf_checkpoint(checkpoint)


NAN = float("nan")

ROWS = [
    # ------------------------------------------------------------------ ladder directories
    Row("ladder/dir-missing", lambda c: Ladder.load(c.fresh("none")), LadderValidationError,
        ["invalid path = ", "Give the directory that holds ladder.json"]),
    Row("ladder/dir-is-a-file", lambda c: Ladder.load(c.ladder / "ladder.json"),
        LadderValidationError, ["invalid path = ", "ladder.json'", "Give the directory"]),
    Row("ladder/ladder.json-missing", lambda c: Ladder.load(c.ladder_variant(drop="ladder.json")),
        LadderValidationError, ["invalid path = ", "ladder.json", "needs a ladder.json file"]),
    Row("ladder/scores-missing", lambda c: Ladder.load(c.ladder_variant(drop="scores.csv")),
        LadderValidationError, field("scores", "None", "needs scores.csv or scores.csv.gz")),
    Row("ladder/json-syntax", lambda c: Ladder.load(c.ladder_variant(lambda d: '{"schema_version": 1,')),
        LadderValidationError, ["invalid ladder.json = ", "Expecting property name", "Fix the JSON syntax"]),
    Row("ladder/json-not-object", lambda c: Ladder.load(c.ladder_variant(lambda d: "[]")),
        LadderValidationError, field("ladder.json", "'list'", "The top level must be a JSON object")),
    Row("ladder/schema-version-2", lambda c: Ladder.load(c.ladder_variant(set_top("schema_version", 2))),
        LadderValidationError, field("schema_version", "2", "upgrade cod_monitor or rewrite the file")),
    Row("ladder/schema-version-str", lambda c: Ladder.load(c.ladder_variant(set_top("schema_version", "1"))),
        LadderValidationError, field("schema_version", "'1'", "reads schema_version 1")),
    Row("ladder/schema-version-missing",
        lambda c: Ladder.load(c.ladder_variant(lambda d: d.pop("schema_version") and None)),
        LadderValidationError, field("schema_version", "None", 'Add "schema_version": 1')),
    Row("ladder/compute-unit-negative", lambda c: Ladder.load(c.ladder_variant(set_top("compute_unit", -1))),
        LadderValidationError, field("compute_unit", "-1", "Give compute_unit as a finite positive number")),
    Row("ladder/compute-unit-zero", lambda c: Ladder.load(c.ladder_variant(set_top("compute_unit", 0))),
        LadderValidationError, field("compute_unit", "0", "Give compute_unit")),
    Row("ladder/models-empty", lambda c: Ladder.load(c.ladder_variant(set_top("models", []))),
        LadderValidationError, field("models", "[]", 'Give "models" as a non-empty list')),
    Row("ladder/models-not-list", lambda c: Ladder.load(c.ladder_variant(set_top("models", {}))),
        LadderValidationError, field("models", "{}", 'Give "models" as a non-empty list')),
    Row("ladder/unknown-top-key", lambda c: Ladder.load(c.ladder_variant(set_top("modles", []))),
        LadderValidationError, field("modles", "[]", "Remove it")),
    Row("ladder/params-negative", lambda c: Ladder.load(c.ladder_variant(set_model(0, "params", -1))),
        LadderValidationError, field("params", "-1", "Give params as a finite positive number")),
    Row("ladder/params-zero", lambda c: Ladder.load(c.ladder_variant(set_model(0, "params", 0))),
        LadderValidationError, field("params", "0", "Give params")),
    Row("ladder/params-text", lambda c: Ladder.load(c.ladder_variant(set_model(0, "params", "big"))),
        LadderValidationError, field("params", "'big'", "Give params")),
    Row("ladder/params-nan",
        lambda c: Ladder.load(c.ladder_variant(
            lambda d: json.dumps(d).replace('"params": 120000000.00000007', '"params": NaN'))),
        LadderValidationError, field("params", "nan", "Give params")),
    Row("ladder/tokens-negative", lambda c: Ladder.load(c.ladder_variant(set_model(0, "tokens", -5))),
        LadderValidationError, field("tokens", "-5", "Give tokens")),
    Row("ladder/compute-negative", lambda c: Ladder.load(c.ladder_variant(set_model(0, "compute", -5))),
        LadderValidationError, field("compute", "-5", "Give compute")),
    Row("ladder/role-unknown", lambda c: Ladder.load(c.ladder_variant(set_model(0, "role", "teacher"))),
        LadderValidationError, field("role", "'teacher'", "Use one of 'ladder', 'anchor', 'target'")),
    Row("ladder/name-duplicate", lambda c: Ladder.load(c.ladder_variant(set_model(1, "name", "syn-0.12B"))),
        LadderValidationError, field("name", "'syn-0.12B'", "Give every model a unique name")),
    Row("ladder/name-empty", lambda c: Ladder.load(c.ladder_variant(set_model(0, "name", ""))),
        LadderValidationError, field("name", "''", "Give every model a non-empty string name")),
    Row("ladder/name-missing", lambda c: Ladder.load(c.ladder_variant(drop_model_key(0, "name"))),
        LadderValidationError, field("name", "None", "Every model needs name, params")),
    Row("ladder/params-missing", lambda c: Ladder.load(c.ladder_variant(drop_model_key(0, "params"))),
        LadderValidationError, field("params", "None", "Every model needs")),
    Row("ladder/model-unknown-key", lambda c: Ladder.load(c.ladder_variant(set_model(0, "parms", 1))),
        LadderValidationError, field("parms", "1", "Remove it")),
    Row("ladder/step-negative", lambda c: Ladder.load(c.ladder_variant(set_model(0, "step", -1))),
        LadderValidationError, field("step", "-1", "Give step as a non-negative integer")),
    Row("ladder/step-fraction", lambda c: Ladder.load(c.ladder_variant(set_model(0, "step", 1.5))),
        LadderValidationError, field("step", "1.5", "Give step")),
    Row("ladder/score-nan", lambda c: Ladder.load(c.ladder_variant(scores_edit=first_row(",0.19,", ",nan,"))),
        LadderValidationError, field("score", "'nan'", "finite numbers in [0, 1]")),
    Row("ladder/score-above-1", lambda c: Ladder.load(c.ladder_variant(scores_edit=first_row(",0.19,", ",1.5,"))),
        LadderValidationError, field("score", "'1.5'", "Scores are pass rates")),
    Row("ladder/score-negative", lambda c: Ladder.load(c.ladder_variant(scores_edit=first_row(",0.19,", ",-0.1,"))),
        LadderValidationError, field("score", "'-0.1'", "Scores are pass rates")),
    Row("ladder/score-text", lambda c: Ladder.load(c.ladder_variant(scores_edit=first_row(",0.19,", ",high,"))),
        LadderValidationError, field("score", "'high'", "Scores are pass rates")),
    Row("ladder/score-empty", lambda c: Ladder.load(c.ladder_variant(scores_edit=first_row(",0.19,", ",,"))),
        LadderValidationError, field("score", "''", "Scores are pass rates")),
    Row("ladder/row-duplicate",
        lambda c: Ladder.load(c.ladder_variant(scores_edit=lambda ls: ls[:2] + [ls[1]] + ls[2:])),
        LadderValidationError, field("sample_id", "'s00000'", "keep one row per benchmark, sample and model")),
    Row("ladder/sample-id-empty",
        lambda c: Ladder.load(c.ladder_variant(scores_edit=first_row(",s00000,", ",,"))),
        LadderValidationError, field("sample_id", "''", "Give every row a non-empty sample id")),
    Row("ladder/loss-negative", lambda c: Ladder.load(c.ladder_variant(set_model(0, "loss", -2.5))),
        LadderValidationError, field("loss", "-2.5", "Give loss as the model's validation loss")),
    Row("ladder/row-unknown-model",
        lambda c: Ladder.load(c.ladder_variant(scores_edit=lambda ls: ls + ["synthetic,s00000,ghost,0.5,100,50"])),
        LadderValidationError, field("model", "'ghost'", "add it there or drop its rows")),
    Row("ladder/column-missing",
        lambda c: Ladder.load(c.ladder_variant(scores_edit=lambda ls: [",".join(x.split(",")[:3]) for x in ls])),
        LadderValidationError, field("score", "None", "Add the column 'score'")),
    Row("ladder/header-unknown",
        lambda c: Ladder.load(c.ladder_variant(scores_edit=lambda ls: ["bench,sample,model,score,n_samples,n_correct"] + ls[1:])),
        LadderValidationError, field("header", "'bench'", "Use each of the columns")),
    Row("ladder/sample-incomplete", lambda c: Ladder.load(c.ladder_variant(scores_edit=lambda ls: ls[:1] + ls[2:])),
        LadderValidationError, field("scores", "'1 of 20 samples incomplete'", "Pass drop_incomplete")),
    Row("ladder/n-correct-above-n",
        lambda c: Ladder.load(c.ladder_variant(scores_edit=first_row(",100,19", ",100,190"))),
        LadderValidationError, field("n_correct", "'190'", "n_correct must be within 0 and n_samples")),
    Row("ladder/n-samples-zero", lambda c: Ladder.load(c.ladder_variant(scores_edit=first_row(",100,19", ",0,0"))),
        LadderValidationError, field("n_samples", "'0'", "give a positive integer")),
    Row("ladder/score-not-counts", lambda c: Ladder.load(c.ladder_variant(scores_edit=first_row(",100,19", ",100,50"))),
        LadderValidationError, field("score", "'0.19'", "fix the score or the counts")),
    Row("ladder/model-without-scores", lambda c: Ladder.load(c.ladder_variant(scores_edit=lambda ls: ls[:1])),
        LadderValidationError, field("model", "'syn-0.12B'", "add its scores or remove it")),
    Row("ladder/benchmark-empty",
        lambda c: Ladder.load(c.ladder_variant(scores_edit=lambda ls: ls[:1] + ["," + x.split(",", 1)[1] for x in ls[1:]])),
        LadderValidationError, field("benchmark", "''", "Name the benchmark of every row")),
    # ------------------------------------------------------------------ command line: predict
    Row("cli/predict-target-compute-negative", lambda c: predict(c, "--target-compute", "-1"), CLIFailed,
        ["argument --target-compute", "got '-1'", "expected a positive finite number"]),
    Row("cli/predict-target-compute-text", lambda c: predict(c, "--target-compute", "lots"), CLIFailed,
        ["argument --target-compute", "got 'lots'", "expected a number such as 1.2e23"]),
    Row("cli/predict-target-compute-nan", lambda c: predict(c, "--target-compute", "nan"), CLIFailed,
        ["argument --target-compute", "got 'nan'", "positive finite"]),
    Row("cli/predict-level-above-1", lambda c: predict(c, "--target-compute", "1e23", "--level", "2"), CLIFailed,
        param("cod-monitor predict", "--level", "2.0")),
    Row("cli/predict-level-text", lambda c: predict(c, "--target-compute", "1e23", "--level", "high"), CLIFailed,
        ["argument --level", "invalid float value: 'high'"]),
    Row("cli/predict-n-bootstrap-negative", lambda c: predict(c, "--target-compute", "1e23", "--n-bootstrap", "-1"),
        CLIFailed, ["argument --n-bootstrap", "got '-1'", "pass 0 or more"]),
    Row("cli/predict-seed-negative", lambda c: predict(c, "--target-compute", "1e23", "--seed", "-2"), CLIFailed,
        ["argument --seed", "got '-2'", "pass 0 or more"]),
    Row("cli/predict-method-unknown", lambda c: predict(c, "--target-compute", "1e23", "--method", "cod-magic"),
        CLIFailed, ["invalid --method = 'cod-magic'", "Use one of cod,"]),
    Row("cli/predict-fallback-unknown", lambda c: predict(c, "--target-compute", "1e23", "--fallback", "guess"),
        CLIFailed, ["argument --fallback", "invalid choice: 'guess'", "choose from"]),
    Row("cli/predict-checkpoints-unknown", lambda c: predict(c, "--target-compute", "1e23", "--checkpoints", "some"),
        CLIFailed, ["argument --checkpoints", "invalid choice: 'some'", "choose from"]),
    Row("cli/predict-benchmark-unknown",
        lambda c: c.cli("predict", "--ladder", c.ladder, "--benchmark", "gsm9k", "--target-compute", "1e23"),
        CLIFailed, ["invalid benchmark = 'gsm9k'", "Use one of the ladder's benchmarks"]),
    Row("cli/predict-ladder-missing",
        lambda c: c.cli("predict", "--ladder", c.fresh("none"), "--benchmark", BENCH, "--target-compute", "1e23"),
        CLIFailed, ["invalid path = ", "Give the directory that holds ladder.json"]),
    Row("cli/predict-target-unknown", lambda c: predict(c, "--target", "ghost"), CLIFailed,
        ["invalid model = 'ghost'", "Use one of the ladder's models"]),
    Row("cli/predict-target-not-a-target", lambda c: predict(c, "--target", "syn-0.12B"), CLIFailed,
        ["invalid --target = 'syn-0.12B'", "pass a model with role 'target'"]),
    Row("cli/predict-compute-unit-zero", lambda c: predict(c, "--target-compute", "1e23", "--compute-unit", "0"),
        CLIFailed, ["argument --compute-unit", "got '0'", "positive finite"]),
    Row("cli/predict-tokens-per-param-negative",
        lambda c: predict(c, "--target-compute", "1e23", "--tokens-per-param", "-20"), CLIFailed,
        ["argument --tokens-per-param", "got '-20'", "positive finite"]),
    Row("cli/predict-anchor-unknown",
        lambda c: predict(c, "--target-compute", "1e23", "--anchor", "ghost", "--n-bootstrap", "0"), CLIFailed,
        ["invalid model = 'ghost'", "Use one of the ladder's models"]),
    Row("cli/predict-two-targets",
        lambda c: predict(c, "--target-compute", "1e23", "--target", "syn-target-70B"), CLIFailed,
        ["argument --target", "not allowed with argument --target-compute"]),
    Row("cli/predict-no-target", lambda c: predict(c), CLIFailed,
        ["one of the arguments --target-compute --target is required"]),
    # ------------------------------------------------------------------ command line: ladder
    Row("cli/ladder-import-format-unknown",
        lambda c: c.cli("ladder", "import", "--format", "xlsx", "--models", c.models_csv, "--out", c.fresh("o")),
        CLIFailed, ["argument --format", "invalid choice: 'xlsx'", "choose from"]),
    Row("cli/ladder-import-scores-missing", lambda c: ladder_import(c, scores=False), CLIFailed,
        ["invalid --scores = None", "Give --scores FILE with --format long"]),
    Row("cli/ladder-import-map-without-equals", lambda c: ladder_import(c, "--map", "score"), CLIFailed,
        ["invalid --map = 'score'", "Use --map ours=theirs"]),
    Row("cli/ladder-import-map-twice", lambda c: ladder_import(c, "--map", "score=a", "--map", "score=b"),
        CLIFailed, ["invalid --map = 'score=b'", "Give 'score' once"]),
    Row("cli/ladder-import-role-unknown", lambda c: ladder_import(c, "--role", "a=teacher"), CLIFailed,
        ["invalid role = 'teacher'", "Use one of 'ladder', 'anchor', 'target'"]),
    Row("cli/ladder-import-compute-unit-negative", lambda c: ladder_import(c, "--compute-unit", "-5"),
        CLIFailed, ["invalid --compute-unit = -5.0", "as a positive number of FLOPs"]),
    Row("cli/ladder-import-compute-unit-nan", lambda c: ladder_import(c, "--compute-unit", "nan"),
        CLIFailed, ["invalid --compute-unit = nan", "as a positive number of FLOPs"]),
    Row("cli/ladder-import-compute-unit-text", lambda c: ladder_import(c, "--compute-unit", "big"), CLIFailed,
        ["argument --compute-unit", "invalid float value: 'big'"]),
    Row("cli/ladder-import-models-missing",
        lambda c: c.cli("ladder", "import", "--format", "long", "--models", c.fresh("none.csv"),
                        "--scores", c.scores_csv, "--out", c.fresh("o")),
        CLIFailed, ["invalid models = ", "none.csv", "Give an existing file"]),
    Row("cli/ladder-import-out-holds-a-ladder",
        lambda c: c.cli("ladder", "import", "--format", "long", "--models", c.models_csv,
                        "--scores", c.scores_csv, "--out", c.ladder),
        CLIFailed, ["invalid --out = ", "already holds a ladder", "pass --force"]),
    Row("cli/ladder-import-lm-eval-model-without-path",
        lambda c: c.cli("ladder", "import", "--format", "lm-eval", "--models", c.models_csv,
                        "--model", "x", "--out", c.fresh("o")),
        CLIFailed, ["invalid --model = 'x'", "Use --model NAME=PATH"]),
    Row("cli/ladder-import-lm-eval-with-scores",
        lambda c: c.cli("ladder", "import", "--format", "lm-eval", "--models", c.models_csv,
                        "--scores", c.scores_csv, "--model", "x=y", "--out", c.fresh("o")),
        CLIFailed, ["invalid --scores = ", "does not apply to --format lm-eval; remove it"]),
    Row("cli/ladder-info-missing", lambda c: c.cli("ladder", "info", c.fresh("none")), CLIFailed,
        ["invalid path = ", "Give the directory"]),
    Row("cli/ladder-validate-missing", lambda c: c.cli("ladder", "validate", c.fresh("none")), CLIFailed,
        ["invalid path = ", "Give the directory"]),
    Row("cli/ladder-validate-schema-2",
        lambda c: c.cli("ladder", "validate", c.ladder_variant(set_top("schema_version", 2))), CLIFailed,
        ["invalid schema_version = 2", "upgrade cod_monitor or rewrite the file"]),
    Row("cli/ladder-subcommand-unknown", lambda c: c.cli("ladder", "frobnicate"), CLIFailed,
        ["argument SUBCOMMAND", "invalid choice: 'frobnicate'", "choose from"]),
    # ------------------------------------------------------------------ command line: demo
    Row("cli/demo-synthetic-n-samples-negative", lambda c: synthetic_demo(c, "--n-samples", "-5"), CLIFailed,
        ["argument --n-samples", "got '-5'", "pass 1 or more"]),
    Row("cli/demo-synthetic-n-samples-zero", lambda c: synthetic_demo(c, "--n-samples", "0"), CLIFailed,
        ["argument --n-samples", "got '0'", "pass 1 or more"]),
    Row("cli/demo-synthetic-n-samples-text", lambda c: synthetic_demo(c, "--n-samples", "many"), CLIFailed,
        ["argument --n-samples", "got 'many'", "expected a whole number"]),
    Row("cli/demo-synthetic-n-models-1", lambda c: synthetic_demo(c, "--n-models", "1"), CLIFailed,
        ["argument --n-models", "got '1'", "pass 3 or more"]),
    Row("cli/demo-synthetic-n-bootstrap-negative",
        lambda c: c.cli("demo", "--synthetic", "--n-bootstrap", "-3"), CLIFailed,
        ["argument --n-bootstrap", "got '-3'", "pass 0 or more"]),
    Row("cli/demo-synthetic-method-unknown", lambda c: synthetic_demo(c, "--method", "nope"), CLIFailed,
        ["unknown --method 'nope'", "use one of cod,"]),
    Row("cli/demo-seed-negative", lambda c: synthetic_demo(c, "--seed", "-1"), CLIFailed,
        ["argument --seed", "got '-1'", "pass 0 or more"]),
    Row("cli/demo-tokens-negative", lambda c: live_demo(c, "--tokens", "-1"), CLIFailed,
        ["argument --tokens", "got '-1'", "pass 1 or more"]),
    Row("cli/demo-checkpoints-zero", lambda c: live_demo(c, "--checkpoints", "0"), CLIFailed,
        ["argument --checkpoints", "got '0'", "pass 1 or more"]),
    Row("cli/demo-sabotage-at-above-1", lambda c: live_demo(c, "--sabotage-at", "1.5"), CLIFailed,
        ["argument --sabotage-at", "got '1.5'", "pass a number in (0, 1)"]),
    Row("cli/demo-sabotage-factor-zero", lambda c: live_demo(c, "--sabotage-factor", "0"), CLIFailed,
        ["argument --sabotage-factor", "got '0'", "pass a number > 0"]),
    Row("cli/demo-threads-zero", lambda c: live_demo(c, "--threads", "0"), CLIFailed,
        ["argument --threads", "got '0'", "pass 1 or more"]),
    Row("cli/demo-eval-threads-text", lambda c: live_demo(c, "--eval-threads", "two"), CLIFailed,
        ["argument --eval-threads", "got 'two'", "expected a whole number"]),
    Row("cli/demo-n-bootstrap-negative", lambda c: live_demo(c, "--n-bootstrap", "-1"), CLIFailed,
        ["argument --n-bootstrap", "got '-1'", "pass 0 or more"]),
    Row("cli/demo-trajectory-unknown", lambda c: live_demo(c, "--trajectory", "nope"), CLIFailed,
        param("cod-monitor demo", "--trajectory", "'nope'")),
    Row("cli/demo-trajectory-method-unknown", lambda c: live_demo(c, "--trajectory-method", "cod-magic"),
        CLIFailed, param("cod-monitor demo", "--trajectory-method", "'cod-magic'")),
    Row("cli/demo-ladder-missing",
        lambda c: c.cli("demo", "--no-wandb", "--quiet", "--out", c.fresh("demo"), "--ladder", c.fresh("none")),
        CLIFailed, ["invalid path = ", "Give the directory that holds ladder.json"]),
    # ------------------------------------------------------------------ ForecastConfig
    Row("ForecastConfig/trajectory", lambda c: ForecastConfig(trajectory="nope"), ParameterError,
        param("ForecastConfig", "trajectory", "'nope'")),
    Row("ForecastConfig/level-1", lambda c: ForecastConfig(level=1.0), ParameterError,
        param("ForecastConfig", "level", "1.0")),
    Row("ForecastConfig/level-nan", lambda c: ForecastConfig(level=NAN), ParameterError,
        param("ForecastConfig", "level", "nan")),
    Row("ForecastConfig/level-text", lambda c: ForecastConfig(level="0.9"), ParameterError,
        param("ForecastConfig", "level", "'0.9'")),
    Row("ForecastConfig/n-bootstrap-negative", lambda c: ForecastConfig(n_bootstrap=-1), ParameterError,
        param("ForecastConfig", "n_bootstrap", "-1")),
    Row("ForecastConfig/n-bootstrap-fraction", lambda c: ForecastConfig(n_bootstrap=10.5), ParameterError,
        param("ForecastConfig", "n_bootstrap", "10.5")),
    Row("ForecastConfig/cod-params-unknown", lambda c: ForecastConfig(cod_params={"n_clusterz": 3}),
        ParameterError, param("ForecastConfig", "cod_params", "{'n_clusterz': 3}") + ["is not a CODForecaster parameter"]),
    Row("ForecastConfig/cod-params-n-bootstrap", lambda c: ForecastConfig(cod_params={"n_bootstrap": 3}),
        ParameterError, param("ForecastConfig", "cod_params", "{'n_bootstrap': 3}") + ["pass ForecastConfig(n_bootstrap=...)"]),
    Row("ForecastConfig/cod-params-list", lambda c: ForecastConfig(cod_params=[1]), ParameterError,
        param("ForecastConfig", "cod_params", "[1]")),
    Row("ForecastConfig/run-sd-negative", lambda c: ForecastConfig(run_sd=-0.1), ParameterError,
        param("ForecastConfig", "run_sd", "-0.1")),
    Row("ForecastConfig/run-sd-map-nan", lambda c: ForecastConfig(run_sd={"b": NAN}), ParameterError,
        param("ForecastConfig", "run_sd", "{'b': nan}")),
    Row("ForecastConfig/refresh-zero", lambda c: ForecastConfig(refresh_interval=0), ParameterError,
        param("ForecastConfig", "refresh_interval", "0")),
    Row("ForecastConfig/trajectory-method", lambda c: ForecastConfig(trajectory_method="cod-magic"),
        ParameterError, param("ForecastConfig", "trajectory_method", "'cod-magic'")),
    # ------------------------------------------------------------------ PoolConfig, QueuePolicy
    Row("PoolConfig/devices-empty", lambda c: PoolConfig(devices=[]), ParameterError,
        param("PoolConfig", "devices", "[]")),
    Row("PoolConfig/devices-none", lambda c: PoolConfig(devices=None), ParameterError,
        param("PoolConfig", "devices", "None") + ["Use devices=['cpu']"]),
    Row("PoolConfig/devices-gpu", lambda c: PoolConfig(devices=["gpu"]), ParameterError,
        param("PoolConfig", "devices", "['gpu']")),
    Row("PoolConfig/devices-negative-index", lambda c: PoolConfig(devices=[-1]), ParameterError,
        param("PoolConfig", "devices", "[-1]")),
    Row("PoolConfig/timeout-text", lambda c: PoolConfig(timeout="never"), ParameterError,
        param("PoolConfig", "timeout", "'never'") + ["Leave timeout='auto'"]),
    Row("PoolConfig/timeout-negative", lambda c: PoolConfig(timeout=-1), ParameterError,
        param("PoolConfig", "timeout", "-1")),
    Row("PoolConfig/timeout-inf", lambda c: PoolConfig(timeout=math.inf), ParameterError,
        param("PoolConfig", "timeout", "inf")),
    Row("PoolConfig/timeout-floor-zero", lambda c: PoolConfig(timeout_floor=0), ParameterError,
        param("PoolConfig", "timeout_floor", "0")),
    Row("PoolConfig/max-retries-negative", lambda c: PoolConfig(max_retries=-1), ParameterError,
        param("PoolConfig", "max_retries", "-1")),
    Row("PoolConfig/max-retries-bool", lambda c: PoolConfig(max_retries=True), ParameterError,
        param("PoolConfig", "max_retries", "True")),
    Row("PoolConfig/queue-policy-unknown", lambda c: PoolConfig(queue_policy="oldest"), ParameterError,
        param("PoolConfig", "queue_policy", "'oldest'")),
    Row("PoolConfig/queue-policy-every-1", lambda c: PoolConfig(queue_policy="every_nth:1"), ParameterError,
        param("PoolConfig", "queue_policy", "'every_nth:1'")),
    Row("PoolConfig/queue-policy-every-x", lambda c: PoolConfig(queue_policy="every_nth:x"), ParameterError,
        param("PoolConfig", "queue_policy", "'every_nth:x'")),
    Row("PoolConfig/cpu-threads-zero", lambda c: PoolConfig(cpu_threads=0), ParameterError,
        param("PoolConfig", "cpu_threads", "0")),
    Row("PoolConfig/job-fn-not-a-path", lambda c: PoolConfig(job_fn="not a path"), ParameterError,
        param("PoolConfig", "job_fn", "'not a path'")),
    Row("PoolConfig/job-fn-int", lambda c: PoolConfig(job_fn=5), ParameterError,
        param("PoolConfig", "job_fn", "5")),
    Row("QueuePolicy/max-pending-zero", lambda c: QueuePolicy(max_pending=0), ParameterError,
        param("QueuePolicy", "max_pending", "0")),
    Row("QueuePolicy/kind", lambda c: QueuePolicy(kind="oldest"), ParameterError,
        param("QueuePolicy", "kind", "'oldest'")),
    # ------------------------------------------------------------------ RunGeometry, CheckpointConfig
    Row("RunGeometry/params-negative", lambda c: RunGeometry(params=-1), ParameterError,
        param("RunGeometry", "params", "-1")),
    Row("RunGeometry/params-text", lambda c: RunGeometry(params="7e9"), ParameterError,
        param("RunGeometry", "params", "'7e9'")),
    Row("RunGeometry/params-nan", lambda c: RunGeometry(params=NAN), ParameterError,
        param("RunGeometry", "params", "nan")),
    Row("RunGeometry/tokens-per-step-zero", lambda c: RunGeometry(tokens_per_step=0), ParameterError,
        param("RunGeometry", "tokens_per_step", "0")),
    Row("RunGeometry/max-steps-zero", lambda c: RunGeometry(max_steps=0), ParameterError,
        param("RunGeometry", "max_steps", "0")),
    Row("RunGeometry/max-steps-float", lambda c: RunGeometry(max_steps=1e4), ParameterError,
        param("RunGeometry", "max_steps", "10000.0")),
    Row("CheckpointConfig/every-zero", lambda c: CheckpointConfig(every=0), ParameterError,
        param("CheckpointConfig", "every", "0")),
    Row("CheckpointConfig/every-fraction", lambda c: CheckpointConfig(every=2.5), ParameterError,
        param("CheckpointConfig", "every", "2.5")),
    Row("CheckpointConfig/config-dir-int", lambda c: CheckpointConfig(config_dir=5), ParameterError,
        param("CheckpointConfig", "config_dir", "5")),
    Row("CheckpointConfig/config-dir-missing", lambda c: CheckpointConfig(config_dir=str(c.root / "no-config")),
        ParameterError, param_path("CheckpointConfig", "config_dir", "no-config") + ["Save the model's config.json"]),
    Row("CheckpointConfig/keep-snapshots-text", lambda c: CheckpointConfig(keep_snapshots="yes"), ParameterError,
        param("CheckpointConfig", "keep_snapshots", "'yes'")),
    Row("CheckpointConfig/link-int", lambda c: CheckpointConfig(link=1), ParameterError,
        param("CheckpointConfig", "link", "1")),
    # ------------------------------------------------------------------ DriftConfig
    Row("DriftConfig/tolerance-negative", lambda c: DriftConfig(tolerance=-0.1), ParameterError,
        param("DriftConfig", "tolerance", "-0.1")),
    Row("DriftConfig/patience-zero", lambda c: DriftConfig(patience=0), ParameterError,
        param("DriftConfig", "patience", "0")),
    Row("DriftConfig/recovery-margin-negative", lambda c: DriftConfig(recovery_margin=-1), ParameterError,
        param("DriftConfig", "recovery_margin", "-1")),
    Row("DriftConfig/recovery-patience-zero", lambda c: DriftConfig(recovery_patience=0), ParameterError,
        param("DriftConfig", "recovery_patience", "0")),
    Row("DriftConfig/min-step-negative", lambda c: DriftConfig(min_step=-1), ParameterError,
        param("DriftConfig", "min_step", "-1")),
    Row("DriftConfig/cusum-threshold-zero", lambda c: DriftConfig(cusum_threshold=0), ParameterError,
        param("DriftConfig", "cusum_threshold", "0")),
    Row("DriftConfig/band-level-above-1", lambda c: DriftConfig(band_level=1.5), ParameterError,
        param("DriftConfig", "band_level", "1.5")),
    Row("DriftConfig/sd-floor-zero", lambda c: DriftConfig(sd_floor=0), ParameterError,
        param("DriftConfig", "sd_floor", "0")),
    # ------------------------------------------------------------------ CODMonitor
    Row("CODMonitor/ladder-int", lambda c: CODMonitor(123, {BENCH: str(c.eval_set)}), ParameterError,
        param("CODMonitor", "ladder", "123")),
    Row("CODMonitor/eval-sets-empty", lambda c: monitor(c, eval_sets={}), ParameterError,
        param("CODMonitor", "eval_sets", "{}")),
    Row("CODMonitor/eval-sets-list", lambda c: monitor(c, eval_sets=["x"]), ParameterError,
        param("CODMonitor", "eval_sets", "['x']")),
    Row("CODMonitor/eval-sets-key-empty", lambda c: monitor(c, eval_sets={"": "x.jsonl"}), ParameterError,
        param("CODMonitor", "eval_sets", "''") + ["Key each evaluation set by the name"]),
    Row("CODMonitor/eval-sets-spec-unknown-key", lambda c: monitor(c, eval_sets={BENCH: {"path": "x", "stopp": "\n"}}),
        ParameterError, param("CODMonitor", "eval_sets", "{'path': 'x', 'stopp': '\\n'}") + ["did you mean 'stop'?"]),
    Row("CODMonitor/eval-sets-spec-no-path", lambda c: monitor(c, eval_sets={BENCH: {"stop": "\n"}}),
        ParameterError, param("CODMonitor", "eval_sets", "{'stop': '\\n'}") + ["'path' is missing"]),
    Row("CODMonitor/eval-sets-spec-int", lambda c: monitor(c, eval_sets={BENCH: 5}), ParameterError,
        param("CODMonitor", "eval_sets", "5")),
    Row("CODMonitor/evaluator-str", lambda c: monitor(c, evaluator="hf"), ParameterError,
        param("CODMonitor", "evaluator", "'hf'")),
    Row("CODMonitor/evaluator-backend", lambda c: monitor(c, evaluator={"backend": "tensorrt"}),
        EvaluatorConfigError, param("the evaluator config", "backend", "'tensorrt'")),
    Row("CODMonitor/evaluator-mode", lambda c: monitor(c, evaluator={"mode": "exacto"}), EvaluatorConfigError,
        param("HFEvaluator", "mode", "'exacto'")),
    Row("CODMonitor/evaluator-temperature", lambda c: monitor(c, evaluator={"temperature": -1}),
        EvaluatorConfigError, param("HFEvaluator", "temperature", "-1")),
    Row("CODMonitor/evaluator-top-p", lambda c: monitor(c, evaluator={"top_p": 0}), EvaluatorConfigError,
        param("HFEvaluator", "top_p", "0")),
    Row("CODMonitor/evaluator-n", lambda c: monitor(c, evaluator={"mode": "sampled", "n": 0}),
        EvaluatorConfigError, param("HFEvaluator", "n", "0")),
    Row("CODMonitor/evaluator-key-typo", lambda c: monitor(c, evaluator={"temprature": 1.0}),
        EvaluatorConfigError, param("CODMonitor", "evaluator", "{'temprature': 1.0}") + ["did you mean 'temperature'"]),
    Row("CODMonitor/evaluator-dtype", lambda c: monitor(c, evaluator={"dtype": "float99"}), EvaluatorConfigError,
        param("HFEvaluator", "dtype", "'float99'") + ["Use one of 'auto'"]),
    Row("CODMonitor/evaluator-gpu-on-cpu-workers", lambda c: monitor(c, evaluator={"device": "cuda:0"}),
        EvaluatorConfigError, param("CODMonitor", "evaluator", "{'device': 'cuda:0'}") + ["remove 'device'"]),
    Row("CODMonitor/evaluator-batch-size", lambda c: monitor(c, evaluator={"batch_size": 0}),
        EvaluatorConfigError, param("HFEvaluator", "batch_size", "0")),
    Row("CODMonitor/forecast-dict", lambda c: monitor(c, forecast={"level": 0.9}), ParameterError,
        param("CODMonitor", "forecast", "{'level': 0.9}")),
    Row("CODMonitor/pool-str", lambda c: monitor(c, pool="cpu"), ParameterError,
        param("CODMonitor", "pool", "'cpu'")),
    Row("CODMonitor/trackers-str", lambda c: monitor(c, trackers="wandb"), ParameterError,
        param("CODMonitor", "trackers", "'wandb'")),
    Row("CODMonitor/tracker-name", lambda c: monitor(c, trackers=["wandb"]), ParameterError,
        param("CODMonitor", "trackers", "['wandb']") + ["pass cod_monitor.trackers.WandbTracker(...) instead of 'wandb'"]),
    Row("CODMonitor/tracker-name-local", lambda c: monitor(c, trackers=["local"]), ParameterError,
        param("CODMonitor", "trackers", "['local']") + ["pass cod_monitor.trackers.LocalTracker(...)"]),
    Row("CODMonitor/tracker-class", lambda c: monitor(c, trackers=[LocalTracker]), ParameterError,
        ["The 'trackers' parameter of CODMonitor must be", "LocalTracker", "Pass an instance, LocalTracker(...)"]),
    Row("CODMonitor/tracker-object", lambda c: monitor(c, trackers=[object()]), ParameterError,
        ["The 'trackers' parameter of CODMonitor must be", "Got [<object object",
         "object lacks start, log_forecast, log_observation, log_alert, finish"]),
    Row("CODMonitor/alert-callback-str", lambda c: monitor(c, alert_callback="print"), ParameterError,
        param("CODMonitor", "alert_callback", "'print'")),
    Row("CODMonitor/out-dir-int", lambda c: monitor(c, out_dir=5), ParameterError,
        param("CODMonitor", "out_dir", "5")),
    Row("CODMonitor/out-dir-empty", lambda c: monitor(c, out_dir=""), ParameterError,
        param("CODMonitor", "out_dir", "''")),
    Row("CODMonitor/out-dir-is-a-file", lambda c: monitor(c, out_dir=str(c.ladder / "ladder.json")),
        ParameterError, param_path("CODMonitor", "out_dir", "ladder.json") + ["It is a file; pass a directory"]),
    Row("CODMonitor/run-name-empty", lambda c: monitor(c, run_name=""), ParameterError,
        param("CODMonitor", "run_name", "''")),
    Row("CODMonitor/poll-interval-negative", lambda c: monitor(c, poll_interval=-1), ParameterError,
        param("CODMonitor", "poll_interval", "-1")),
    Row("CODMonitor/start-ladder-missing",
        lambda c: CODMonitor(c.fresh("none"), {BENCH: str(c.eval_set)}, out_dir=c.fresh("out")).start(),
        LadderValidationError, ["invalid path = ", "Give the directory that holds ladder.json"]),
    Row("CODMonitor/start-eval-set-missing",
        lambda c: monitor(c, eval_sets={BENCH: str(c.root / "none.jsonl")}, out_dir=c.fresh("out")).start(),
        FileNotFoundError, ["The evaluation set", "none.jsonl", "does not exist; give a JSON-lines file"]),
    Row("CODMonitor/start-benchmark-unknown",
        lambda c: monitor(c, eval_sets={"gsm9k": str(c.eval_set)}, out_dir=c.fresh("out")).start(),
        InputError, ["no benchmark 'gsm9k'", "Name each evaluation set by the ladder benchmark"]),
    Row("CODMonitor/start-eval-set-other-samples",
        lambda c: monitor(c, eval_sets={BENCH: str(c.text_file(
            '{"id": "x1", "prompt": "p", "answer": "a"}\n'))}, out_dir=c.fresh("out")).start(),
        InputError, ["does not hold the ladder's samples", "Only in the evaluation set: 'x1'",
                     "Evaluate the run on exactly the samples the ladder was scored on"]),
    # ------------------------------------------------------------------ CODCallback
    Row("CODCallback/monitor-and-arguments", lambda c: CODCallback(monitor(c), ladder=c.ladder),
        CallbackArgumentsError, ["takes either a monitor or CODMonitor keyword arguments, not both", "['ladder']"]),
    Row("CODCallback/unknown-keyword", lambda c: callback(c, drain_timout=5), CallbackArgumentsError,
        ["unexpected keyword argument 'drain_timout'", "Did you mean 'drain_timeout'?"]),
    Row("CODCallback/drain-timeout-negative", lambda c: callback(c, drain_timeout=-5), ParameterError,
        param("CODCallback", "drain_timeout", "-5")),
    Row("CODCallback/compute-from", lambda c: callback(c, compute_from="flops"), ParameterError,
        param("CODCallback", "compute_from", "'flops'")),
    Row("CODCallback/stop-on-drift-str", lambda c: callback(c, stop_on_drift="yes"), ParameterError,
        param("CODCallback", "stop_on_drift", "'yes'")),
    Row("CODCallback/no-ladder", lambda c: CODCallback(eval_sets={BENCH: str(c.eval_set)}), ParameterError,
        param("CODCallback", "ladder", "None") + ["Pass ladder= and eval_sets="]),
    Row("CODCallback/monitor-str", lambda c: CODCallback("monitor"), ParameterError,
        param("CODCallback", "monitor", "'monitor'")),
    Row("CODCallback/tracker-name", lambda c: callback(c, trackers=["wandb"]), ParameterError,
        param("CODCallback", "trackers", "['wandb']") + ["WandbTracker(...)"]),
    # ------------------------------------------------------------------ trackers
    Row("LocalTracker/out-dir-int", lambda c: LocalTracker(5), ParameterError,
        param("LocalTracker", "out_dir", "5")),
    Row("LocalTracker/out-dir-is-a-file", lambda c: LocalTracker(str(c.ladder / "ladder.json")), ParameterError,
        param_path("LocalTracker", "out_dir", "ladder.json") + ["It is a file; pass a directory"]),
    Row("LocalTracker/plots", lambda c: LocalTracker(c.fresh("local"), plots="yes"), ParameterError,
        param("LocalTracker", "plots", "'yes'")),
    Row("LocalTracker/render-interval-negative", lambda c: LocalTracker(c.fresh("local"), render_interval_s=-1),
        ParameterError, param("LocalTracker", "render_interval_s", "-1")),
    Row("WandbTracker/alert-cooldown-negative", lambda c: _wandb_tracker(alert_cooldown_s=-1), ParameterError,
        param("WandbTracker", "alert_cooldown_s", "-1")),
    Row("WandbTracker/chart-interval-nan", lambda c: _wandb_tracker(chart_interval_s=NAN), ParameterError,
        param("WandbTracker", "chart_interval_s", "nan")),
    # ------------------------------------------------------------------ evaluation sets
    Row("EvalSet/file-missing", lambda c: EvalSet.from_jsonl(c.root / "none.jsonl"), FileNotFoundError,
        ["none.jsonl", "does not exist; give a JSON-lines file"]),
    Row("EvalSet/file-is-a-directory", lambda c: EvalSet.from_jsonl(c.root), FileNotFoundError,
        ["is a directory, not a JSON-lines file"]),
    Row("EvalSet/json-syntax",
        lambda c: EvalSet.from_jsonl(c.text_file('{"id": "a", "prompt": "x", "answer": "y"}\n{"id": "b", "prompt": \n')),
        EvalSetValidationError, [":2: invalid line = ", "Make every line one JSON object"]),
    Row("EvalSet/record-not-object", lambda c: EvalSet.from_jsonl(c.text_file("[1, 2]\n")), EvalSetValidationError,
        ["invalid record = [1, 2]", "Each record must be a JSON object"]),
    Row("EvalSet/prompt-missing", lambda c: EvalSet.from_jsonl(c.text_file('{"id": "a", "answer": "y"}\n')),
        EvalSetValidationError, ["invalid prompt = None", "Give every record a 'prompt' field"]),
    Row("EvalSet/id-missing", lambda c: EvalSet.from_jsonl(c.text_file('{"prompt": "x", "answer": "y"}\n')),
        EvalSetValidationError, ["invalid id = None", "Give every record a 'id' field"]),
    Row("EvalSet/id-duplicate",
        lambda c: EvalSet.from_jsonl(c.text_file('{"id": "a", "prompt": "x", "answer": "y"}\n'
                                                 '{"id": "a", "prompt": "z", "answer": "y"}\n')),
        EvalSetValidationError, ["invalid id = 'a'", "Ids must be unique"]),
    Row("EvalSet/empty", lambda c: EvalSet.from_jsonl(c.text_file("\n")), EvalSetValidationError,
        ["invalid samples = ()", "Give the eval set at least one sample"]),
    Row("EvalSet/scorer-unknown", lambda c: EvalSet.from_jsonl(c.eval_set, scorer="fuzzy"), EvalSetValidationError,
        ["invalid scorer = 'fuzzy'", "Use one of 'exact', 'normalized'"]),
    Row("EvalSet/stop-inside-answer", lambda c: EvalSet.from_jsonl(c.eval_set, stop="a"), EvalSetValidationError,
        ["invalid answer = 'a0'", "choose a stop marker that never occurs inside an answer"]),
    Row("EvalSet/last-number-text-answer",
        lambda c: EvalSet.from_jsonl(c.text_file('{"id": "a", "prompt": "x", "answer": "yes"}\n'), scorer="last_number"),
        EvalSetValidationError, ["invalid answer = 'yes'", "needs numeric answers; use another scorer"]),
    Row("EvalSet/stop-int", lambda c: EvalSet.from_jsonl(c.eval_set, stop=5), EvalSetValidationError,
        ["invalid stop = 5", "Pass the stop marker as a string or None"]),
    Row("EvalSet/name-empty", lambda c: EvalSet.from_jsonl(c.eval_set, name=""), EvalSetValidationError,
        ["invalid name = ''", "Give the eval set a non-empty name"]),
    # ------------------------------------------------------------------ evaluators
    Row("HFEvaluator/mode", lambda c: HFEvaluator(mode="greedy"), EvaluatorConfigError,
        param("HFEvaluator", "mode", "'greedy'")),
    Row("HFEvaluator/dtype", lambda c: HFEvaluator(dtype="float99"), EvaluatorConfigError,
        param("HFEvaluator", "dtype", "'float99'") + ["Use one of 'auto'"]),
    Row("HFEvaluator/checkpoint-format", lambda c: HFEvaluator(checkpoint_format="zip"), EvaluatorConfigError,
        param("HFEvaluator", "checkpoint_format", "'zip'")),
    Row("make_evaluator/not-a-dict", lambda c: _make_evaluator("hf"), EvaluatorConfigError,
        param("make_evaluator", "config", "'hf'")),
    # ------------------------------------------------------------------ checkpoint contents
    Row("checkpoint/directory-missing", lambda c: load(str(c.fresh("none"))), FileNotFoundError,
        ["The checkpoint directory", "does not exist. Pass the directory save_pretrained wrote"]),
    Row("checkpoint/directory-is-a-file", lambda c: load(str(c.ladder / "ladder.json")), FileNotFoundError,
        ["ladder.json' is a file, not a directory. Pass the directory"]),
    Row("checkpoint/empty-directory", lambda c: load(c.checkpoint_variant(lambda d: [p.unlink() for p in d.iterdir()])),
        CorruptCheckpointError, ["config.json: missing.", "Save the model and its tokenizer with save_pretrained"]),
    Row("checkpoint/config-missing", lambda c: load(c.checkpoint_variant(lambda d: (d / "config.json").unlink())),
        CorruptCheckpointError, ["config.json: missing.", "CheckpointConfig(config_dir=...)"]),
    Row("checkpoint/weights-missing", lambda c: load(c.checkpoint_variant(lambda d: (d / "model.safetensors").unlink())),
        CorruptCheckpointError, ["a directory without weights (none of model.safetensors", "Give the directory the training run saved"]),
    Row("checkpoint/tokenizer-missing",
        lambda c: load(c.checkpoint_variant(lambda d: [p.unlink() for p in d.iterdir() if "token" in p.name])),
        CorruptCheckpointError, ["a directory without a tokenizer", "Save the model and its tokenizer"]),
    Row("checkpoint/weights-truncated", lambda c: load(c.checkpoint_variant(lambda d: truncate(d / "model.safetensors"))),
        CorruptCheckpointError, ["model.safetensors: truncated or corrupt (SafetensorError", "save the checkpoint again"]),
    Row("checkpoint/weights-empty", lambda c: load(c.checkpoint_variant(lambda d: truncate(d / "model.safetensors", 0))),
        CorruptCheckpointError, ["model.safetensors: truncated or corrupt", "header too small", "save the checkpoint again"]),
    Row("checkpoint/config-not-json", lambda c: load(c.checkpoint_variant(lambda d: truncate(d / "config.json"))),
        CorruptCheckpointError, ["config.json: not valid JSON", "save the checkpoint again"]),
    Row("checkpoint/config-of-other-weights",
        lambda c: load(c.checkpoint_variant(lambda d: (d / "config.json").write_text(
            (d / "config.json").read_text().replace('"hidden_size": 32', '"hidden_size": 64')))),
        CorruptCheckpointError, ["config.json: not the config of these weights", "size mismatch",
                    "Save the config.json of the model these weights were trained with"]),
    Row("checkpoint/Checkpoint-without-path", lambda c: load(Checkpoint(step=1, compute=None)),
        EvaluatorConfigError, ["The 'checkpoint' parameter of load_hf_checkpoint must be a Checkpoint with a path",
                               "Got Checkpoint(step=1, compute=None, tokens=None, path=None) instead.",
                               "Save the checkpoint"]),
    Row("checkpoint/state-dict-without-config", lambda c: load({"state_dict": {}}), EvaluatorConfigError,
        param("load_hf_checkpoint", "checkpoint", "\"a dict with keys ['state_dict']\"")),
    # ------------------------------------------------------------------ on_checkpoint (refused with an alert)
    Row("on_checkpoint/step-negative", lambda c: c.on_checkpoint(step=-1, tokens=1e6, path=c.checkpoint_dir()),
        Refused, param("CODMonitor.on_checkpoint", "step", "-1")),
    Row("on_checkpoint/step-text", lambda c: c.on_checkpoint(step="ten", tokens=1e6, path=c.checkpoint_dir()),
        Refused, param("CODMonitor.on_checkpoint", "step", "'ten'")),
    Row("on_checkpoint/step-fraction", lambda c: c.on_checkpoint(step=2.5, tokens=1e6, path=c.checkpoint_dir()),
        Refused, param("CODMonitor.on_checkpoint", "step", "2.5")),
    Row("on_checkpoint/tokens-negative", lambda c: c.on_checkpoint(step=11, tokens=-5, path=c.checkpoint_dir()),
        Refused, param("CODMonitor.on_checkpoint", "tokens", "-5") + ["Pass the training tokens seen so far"]),
    Row("on_checkpoint/tokens-nan", lambda c: c.on_checkpoint(step=12, tokens=NAN, path=c.checkpoint_dir()),
        Refused, param("CODMonitor.on_checkpoint", "tokens", "nan")),
    Row("on_checkpoint/tokens-text", lambda c: c.on_checkpoint(step=13, tokens="many", path=c.checkpoint_dir()),
        Refused, param("CODMonitor.on_checkpoint", "tokens", "'many'")),
    Row("on_checkpoint/compute-negative",
        lambda c: c.on_checkpoint(step=14, tokens=1e6, compute=-1.0, path=c.checkpoint_dir()),
        Refused, param("CODMonitor.on_checkpoint", "compute", "-1.0") + ["Pass the training FLOPs spent so far"]),
    Row("on_checkpoint/compute-inf", lambda c: c.on_checkpoint(step=15, compute=math.inf, path=c.checkpoint_dir()),
        Refused, param("CODMonitor.on_checkpoint", "compute", "inf")),
    Row("on_checkpoint/no-path-no-state-dict", lambda c: c.on_checkpoint(step=16, tokens=1e6), Refused,
        param("CODMonitor.on_checkpoint", "path", "None") + ["needs exactly one of path= and state_dict="]),
    Row("on_checkpoint/path-and-state-dict",
        lambda c: c.on_checkpoint(step=17, tokens=1e6, path=c.checkpoint_dir(), state_dict={}),
        Refused, param("CODMonitor.on_checkpoint", "state_dict", "'dict'")),
    Row("on_checkpoint/path-missing", lambda c: c.on_checkpoint(step=18, tokens=1e6, path=c.fresh("none")),
        Refused, ["checkpoint directory", "does not exist; pass the directory the checkpoint was saved to"]),
    Row("on_checkpoint/path-is-a-file",
        lambda c: c.on_checkpoint(step=19, tokens=1e6, path=c.ladder / "ladder.json"),
        Refused, ["ladder.json' is a file, not a directory; pass the directory"]),
    Row("on_checkpoint/state-dict-not-mapping",
        lambda c: c.on_checkpoint(step=20, tokens=1e6, state_dict=[1, 2], config_dir=c.checkpoint_dir()),
        Refused, param("CODMonitor.on_checkpoint", "state_dict", "'list'") + ["Pass model.state_dict()"]),
    Row("on_checkpoint/state-dict-without-config-dir",
        lambda c: c.on_checkpoint(step=21, tokens=1e6, state_dict={"w": 1}), Refused,
        param("CODMonitor.on_checkpoint", "config_dir", "None") + ["pass config_dir= here"]),
]


def _wandb_tracker(**kw):
    pytest.importorskip("wandb")
    from cod_monitor.trackers.wandb import WandbTracker

    return WandbTracker(**kw)


def _make_evaluator(config):
    from cod_monitor.evaluators import make_evaluator

    return make_evaluator(config)


def test_the_table_covers_every_surface_with_at_least_100_rows():
    assert len(ROWS) >= 100
    assert len({r.id for r in ROWS}) == len(ROWS)
    surfaces = {r.id.split("/")[0] for r in ROWS}
    assert {"ladder", "cli", "CODMonitor", "CODCallback", "ForecastConfig", "PoolConfig",
            "DriftConfig", "RunGeometry", "CheckpointConfig", "EvalSet", "checkpoint",
            "on_checkpoint", "LocalTracker"} <= surfaces


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_bad_input_is_refused_with_a_named_error(ctx, row):
    with pytest.raises(row.error) as info:
        row.call(ctx)
    message = " ".join(str(info.value).split())  # one paragraph, as the user reads it
    missing = [s for s in row.expected if " ".join(s.split()) not in message]
    assert not missing, f"{type(info.value).__name__}: {message}\nlacks {missing}"
