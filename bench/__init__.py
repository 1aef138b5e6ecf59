"""Benchmarks on real-sized data: each prints its figures (not timed tests)."""
