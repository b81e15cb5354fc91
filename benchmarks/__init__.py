"""Benchmarks of cod_monitor: run each as ``python -m benchmarks.<name>`` from the repository root.

Each script prints a table and writes JSON under ``benchmarks/results/``; the latest
tables, with their command and date, are in ``BENCHMARKS.md``. They import only the
public API of ``cod_monitor``.
"""
