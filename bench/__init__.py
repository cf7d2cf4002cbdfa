"""Benchmarks behind `make bench`; nothing here is imported by the product."""
