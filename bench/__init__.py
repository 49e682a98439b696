"""Benchmarks (not tests): speed, size and accuracy numbers that go into reports."""
