"""SQL of the API: plain, parameterised, one small keyword-only function per question."""

from __future__ import annotations

__all__ = ["buses", "dead_letters", "devices", "health", "keys", "parking", "sites", "waste"]
