"""The codec registry, keyed by TTN Device Repository id (``vendor/model``).

Built-in codecs register here exactly as a third-party codec would: ``register(MyCodec())``. Third-party packages
can also expose codecs through the ``stadtpuls.codecs`` entry-point group (each entry point names a Codec
instance or class).
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import entry_points

from .base import Codec, UnknownCodec

__all__ = ["all_codecs", "get", "register"]

_CODECS: dict[str, Codec] = {}
_BUILTIN_MODULES = (
    "netvox",
    "nwave",
    "bosch",
    "dragino",
    "milesight",
    "elsys",
    "paxcounter",
    "pepperl_fuchs",
)
_loaded = False


def register(codec: Codec) -> Codec:
    """Register a codec instance under its ``id``; returns it so it can be used as a module-level statement."""
    _CODECS[codec.id] = codec
    return codec


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for name in _BUILTIN_MODULES:
        import_module(f"{__package__}.{name}")
    for ep in entry_points(group="stadtpuls.codecs"):
        obj = ep.load()
        register(obj() if isinstance(obj, type) else obj)


def get(codec_id: str) -> Codec:
    """The codec registered as ``codec_id``; raises :class:`UnknownCodec`."""
    _load()
    try:
        return _CODECS[codec_id]
    except KeyError:
        raise UnknownCodec(codec_id) from None


def all_codecs() -> dict[str, Codec]:
    _load()
    return dict(_CODECS)
