"""Fixtures of the bad-input table (the helpers are in ``badinput_context``: a module
of its own name, since every test directory has a ``conftest``)."""

import pytest
from badinput_context import Context


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    context = Context(tmp_path_factory.mktemp("badinput"))
    yield context
    if context.monitor is not None:
        context.monitor.close(timeout=30)
