"""Vectorised payload codecs of the reference devices, found by TTN Device Repository id."""

from .base import QUANTITIES, Codec, CodecError, Column, Decoded, EncodeError, FieldSpec, UnknownCodec
from .codec_registry import all_codecs, get, register

__all__ = [
    "QUANTITIES",
    "Codec",
    "CodecError",
    "Column",
    "Decoded",
    "EncodeError",
    "FieldSpec",
    "UnknownCodec",
    "all_codecs",
    "get",
    "register",
]
