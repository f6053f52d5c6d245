"""``stadtpuls api --host H --port P``: serve the API with uvicorn (hardened, see :mod:`stadtpuls.api.server`)."""

from __future__ import annotations

import argparse

__all__ = ["setup"]


def _run(args: argparse.Namespace) -> int:
    from stadtpuls.logs import configure_logging
    from stadtpuls.settings import load

    from .main import create_app
    from .server import serve

    settings = load()
    configure_logging(settings.log_level, settings.log_format)
    host = args.host or settings.api_host
    port = args.port or settings.api_port
    if args.workers > 1:  # each worker builds its app (and reads the settings) itself
        serve(
            settings,
            "stadtpuls.api.main:create_app",
            host=host,
            port=port,
            factory=True,
            workers=args.workers,
            log_config=None,
            access_log=args.access_log,
        )
    else:
        serve(settings, create_app(settings), host=host, port=port, log_config=None, access_log=args.access_log)
    return 0


def setup(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", help="bind address (default STADTPULS_API_HOST)")
    p.add_argument("--port", type=int, help="port (default STADTPULS_API_PORT)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument(
        "--access-log", action="store_true", help="log every request (client from STADTPULS_TRUSTED_PROXIES)"
    )
    p.set_defaults(func=_run)
