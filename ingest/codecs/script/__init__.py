"""JavaScript payload codecs (the vendors' ``decodeUplink``), run in batches behind the codec interface."""

from .codec import MAX_LIMIT_FAILURES, ScriptCodec, ScriptDecoded, configure_limits, default_limits
from .engine import Engine, EngineLimit, Limits, ScriptError, ScriptLoadError
from .readings import ReadingRule, ReadingsMap, ReadingsMapError

__all__ = [
    "MAX_LIMIT_FAILURES",
    "Engine",
    "EngineLimit",
    "Limits",
    "ReadingRule",
    "ReadingsMap",
    "ReadingsMapError",
    "ScriptCodec",
    "ScriptDecoded",
    "ScriptError",
    "ScriptLoadError",
    "configure_limits",
    "default_limits",
]
