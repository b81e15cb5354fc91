"""The top-level ``cod-monitor`` command: ``--version``."""

import subprocess
import sys

import pytest

import cod_monitor
from cod_monitor.cli import main


def test_version_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"cod-monitor {cod_monitor.__version__}"


def test_version_from_the_installed_entry_point():
    out = subprocess.run([sys.executable, "-c", "import sys; from cod_monitor.cli import main; "
                          "sys.exit(main())", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.split() == ["cod-monitor", cod_monitor.__version__]


def test_cli_parser_does_not_import_the_forecasting_stack():
    # `cod-monitor --version` and `--help` answer at once: scikit-learn and scipy's
    # optimisers load only when a command needs them
    import subprocess
    import sys

    code = ("import sys; from cod_monitor.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('sklearn', 'scipy.optimize', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_predict_runs_with_one_openblas_thread_unless_the_user_chose():
    # set before numpy loads (OpenBLAS reads it once); other commands keep the default
    import subprocess
    import sys

    code = ("import os, sys; from cod_monitor.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print(os.environ.get('OPENBLAS_NUM_THREADS'))")
    env = {k: v for k, v in __import__("os").environ.items() if k != "OPENBLAS_NUM_THREADS"}
    run = lambda *args, **extra: subprocess.run(  # noqa: E731
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True,
        env={**env, **extra}).stdout.split()[-1]
    assert run("predict", "--help") == "1"
    assert run("ladder", "--help") == "None"
    assert run("predict", "--help", OPENBLAS_NUM_THREADS="4") == "4"
