"""Helpers of the bad-input table: one valid ladder, evaluation set and checkpoint,
from which each row makes its own broken copy, and helpers that turn the command line
and ``on_checkpoint`` (which never raise into their caller) into exceptions a row can
expect."""

import contextlib
import io
import json
import shutil
from pathlib import Path

import pytest

from cod_monitor.synthetic import synthetic_ladder

BENCH = "synthetic"


class CLIFailed(Exception):
    """``cod-monitor`` exited with a non-zero code; the message is its stderr."""


class Refused(Exception):
    """``CODMonitor.on_checkpoint`` refused a checkpoint; the message is its alert's."""


class Context:
    """What the rows call into: paths, builders of broken copies, and runners."""

    def __init__(self, root: Path):
        self.root = root
        self.ladder = root / "ladder"
        syn = synthetic_ladder(n_samples=20, n_models=4, seed=0)
        syn.ladder.save(self.ladder)
        self.ids = list(syn.ladder.matrix(BENCH).sample_ids)
        self.eval_set = root / "eval.jsonl"
        self.eval_set.write_text("".join(
            json.dumps({"id": i, "prompt": f"q{i}=", "answer": f"a{i[-1]}"}) + "\n"
            for i in self.ids))
        self.models_csv = root / "models.csv"
        self.models_csv.write_text("name,params,tokens\na,1e8,2e9\nb,2e8,4e9\nc,4e8,8e9\n")
        self.scores_csv = root / "scores.csv"
        self.scores_csv.write_text("benchmark,sample_id,model,score\n"
                                   "x,s1,a,0.5\nx,s1,b,0.6\nx,s1,c,0.7\n")
        self._n = 0
        self.monitor = None
        self.alerts = []
        self._checkpoint = None

    def fresh(self, name: str) -> Path:
        """A new, not yet existing path under the root."""
        self._n += 1
        return self.root / f"{name}-{self._n}"

    # ------------------------------------------------------------------ ladders
    def ladder_variant(self, json_edit=None, scores_edit=None, drop=None) -> Path:
        """A copy of the valid ladder with ``ladder.json`` edited (``json_edit(dict)``
        changes it in place, or returns the new text), ``scores.csv`` edited
        (``scores_edit(lines) -> lines``) or a file removed."""
        d = self.fresh("ladder")
        shutil.copytree(self.ladder, d)
        if json_edit is not None:
            data = json.loads((d / "ladder.json").read_text())
            text = json_edit(data)
            (d / "ladder.json").write_text(text if isinstance(text, str) else json.dumps(data))
        if scores_edit is not None:
            lines = (d / "scores.csv").read_text().splitlines()
            (d / "scores.csv").write_text("\n".join(scores_edit(lines)) + "\n")
        if drop is not None:
            (d / drop).unlink()
        return d

    # ------------------------------------------------------------------ files
    def text_file(self, text: str, suffix: str = ".jsonl") -> Path:
        path = self.fresh("file").with_suffix(suffix)
        path.write_text(text)
        return path

    def checkpoint_variant(self, edit) -> Path:
        """A copy of a real tiny ``save_pretrained`` checkpoint, passed to ``edit(dir)``."""
        pytest.importorskip("torch")
        pytest.importorskip("transformers")
        if self._checkpoint is None:
            import sys

            sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "evaluators"))
            from tinylm import build_char_tokenizer, build_tiny_llama, save_checkpoint

            tok = build_char_tokenizer()
            self._checkpoint = Path(save_checkpoint(
                build_tiny_llama(len(tok), hidden=32, layers=1), tok, self.root / "tiny"))
        d = self.fresh("checkpoint")
        shutil.copytree(self._checkpoint, d)
        edit(d)
        return d

    # ------------------------------------------------------------------ runners
    def cli(self, *argv) -> None:
        """Run ``cod-monitor ARGV`` in this process; raise :class:`CLIFailed` with its
        stderr when it exits non-zero. A traceback, or more than one paragraph, on
        stderr fails the row."""
        from cod_monitor.cli import main

        err, out = io.StringIO(), io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            try:
                code = main([str(a) for a in argv])
            except SystemExit as exc:  # argparse
                code = exc.code
        stderr = err.getvalue()
        assert "Traceback" not in stderr, stderr
        if code:
            assert "\n\n" not in stderr.strip(), f"more than one paragraph:\n{stderr}"
            raise CLIFailed(stderr.strip())

    def on_checkpoint(self, **kwargs) -> None:
        """Hand a checkpoint to a running monitor; raise :class:`Refused` with the alert
        saying why it was refused."""
        from cod_monitor.monitor import CODMonitor, ForecastConfig
        from cod_monitor.records import AlertReason

        if self.monitor is None:
            self.monitor = CODMonitor(
                self.ladder, {BENCH: str(self.eval_set)}, {"backend": "hf", "mode": "exact"},
                forecast=ForecastConfig(n_bootstrap=0, refresh_interval=None),
                out_dir=self.root / "monitor", poll_interval=None,
                alert_callback=self.alerts.append).start()
        n = len(self.alerts)
        self.monitor.on_checkpoint(**kwargs)
        self.monitor.poll()
        new = [a for a in self.alerts[n:] if a.reason is AlertReason.EVALUATION_FAILING]
        if new:
            raise Refused(new[0].message)

    def checkpoint_dir(self) -> Path:
        """A checkpoint directory on_checkpoint can take."""
        d = self.fresh("ckpt")
        d.mkdir()
        (d / "config.json").write_text("{}")
        return d
