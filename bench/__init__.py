"""Benchmark suite for netfleet: `python -m bench` (or `make bench`).

Starts a production-like instance in a throwaway data directory, seeds it, drives each workload with `wrk`
and prints one JSON line per workload on stdout.
"""
