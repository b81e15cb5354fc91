"""cod_monitor._threads: one BLAS thread inside the block, the previous setting after."""

import pytest
from threadpoolctl import threadpool_info

from cod_monitor._threads import one_blas_thread

pytest.importorskip("numpy")  # loads OpenBLAS


def blas_threads():
    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]


def test_one_thread_inside_and_the_setting_restored_after_nested_blocks():
    before = blas_threads()
    if not before:
        pytest.skip("no BLAS library that threadpoolctl can control")
    with one_blas_thread():
        assert set(blas_threads()) == {1}
        with one_blas_thread():
            assert set(blas_threads()) == {1}
        assert set(blas_threads()) == {1}
    assert blas_threads() == before
