"""Benchmarks: ``make bench`` (all) and ``make bench-<name>``. Not tests: nothing here runs in ``make test``.

Each benchmark measures the product against a baseline taken in the same run, prints the
figures as ratios to it, and refreshes its own section of docs/performance.md.
"""
