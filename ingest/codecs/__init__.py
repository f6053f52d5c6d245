"""Vectorised payload codecs of the reference devices, found by TTN Device Repository id, and the codecs of any
other device: its vendor's JavaScript codec script (:mod:`.script`)."""

from .base import QUANTITIES, Codec, CodecError, Column, Decoded, EncodeError, FieldSpec, UnknownCodec
from .codec_registry import all_codecs, get, register
from .script import ReadingsMap, ReadingsMapError, ScriptCodec

__all__ = [
    "QUANTITIES",
    "Codec",
    "CodecError",
    "Column",
    "Decoded",
    "EncodeError",
    "FieldSpec",
    "ReadingsMap",
    "ReadingsMapError",
    "ScriptCodec",
    "UnknownCodec",
    "all_codecs",
    "get",
    "register",
]
