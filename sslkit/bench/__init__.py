"""Benchmarks (never tests): ``python -m sslkit.bench transport``."""
