"""Shipyard's benchmarks: standalone scripts, run all together with ``python -m benchmarks``.

Benchmarks measure; they do not assert timings (tests never do). See ``README.md`` here for
the numbers and the commands that produced them.
"""
