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
