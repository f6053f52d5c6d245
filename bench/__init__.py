"""Benchmarks, each run alone by ``python -m bench.<name>`` (``make bench`` runs them all)."""

__all__: list[str] = []
