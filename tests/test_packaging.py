"""Installing like a library: extras without a torch pin, the CPU wheel pinned where we
install, an Install section that names every extra."""

import re
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]


def _extras() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]


def test_no_extra_pins_torch():
    for name, requirements in _extras().items():
        torch = [r for r in requirements if re.match(r"torch\b", r)]
        assert all("==" not in r for r in torch), (name, torch)
    assert "torch>=2.3" in _extras()["hf"]


def test_the_makefile_installs_the_cpu_wheel_for_the_tests_and_ci():
    makefile = (ROOT / "Makefile").read_text()
    hf_install = next(line for line in makefile.splitlines() if ".[dev,hf" in line)
    assert "torch==2.13.0" in hf_install
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_readme_install_section_names_every_extra():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Install\n", 1)[1].split("\n## ", 1)[0]
    for name in _extras():
        assert f"| `{name}` |" in section, name
    assert "https://download.pytorch.org/whl/cpu" in section
    assert "cod-monitor --version" in section
