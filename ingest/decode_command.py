"""``stadtpuls decode``: the codec decode command (:mod:`ingest.codecs.cli`) with the stored script codecs.

``--codec ID`` finds a built-in codec, else the current version of the script codec stored as ``ID`` in the
database (``STADTPULS_DATABASE_URL`` or ``--database-url``); ``--codec-file FILE.js`` needs no database.
"""

from __future__ import annotations

import argparse

import psycopg

from stadtpuls.settings import load

from .codec_scripts import ScriptStoreError, current_scripts, load_script
from .codecs import Codec, UnknownCodec
from .codecs.cli import add_arguments, run

__all__ = ["setup", "stored_script"]


def stored_script(args: argparse.Namespace) -> Codec:
    """The current version of the script codec ``args.codec``; raises UnknownCodec when none is stored."""
    url = args.database_url
    if not url:
        configured = load().database_url
        if configured is None:
            raise UnknownCodec(args.codec)
        url = configured.get_secret_value()
    try:
        with psycopg.connect(url) as conn:
            stored = current_scripts(conn, args.codec).get(args.codec)
    except psycopg.OperationalError as e:
        raise ScriptStoreError(args.codec, f"cannot connect to the database: {e}") from None
    if stored is None:
        raise UnknownCodec(args.codec)
    return load_script(stored)


def _run(args: argparse.Namespace) -> int:
    return run(args, resolve=stored_script)


def setup(parser: argparse.ArgumentParser) -> None:
    add_arguments(parser)
    parser.add_argument("--database-url", help="for stored script codecs; overrides STADTPULS_DATABASE_URL")
    parser.set_defaults(func=_run)
