"""``stadtpuls api --host H --port P``: serve the API with uvicorn."""

from __future__ import annotations

import argparse

__all__ = ["setup"]


def _run(args: argparse.Namespace) -> int:
    import uvicorn

    from stadtpuls.logs import configure_logging
    from stadtpuls.settings import load

    settings = load()
    configure_logging(settings.log_level, settings.log_format)
    host = args.host or settings.api_host
    port = args.port or settings.api_port
    common = {
        "host": host,
        "port": port,
        "log_config": None,
        "access_log": args.access_log,
        "proxy_headers": args.proxy_headers,
        "forwarded_allow_ips": args.forwarded_allow_ips,
    }
    if args.workers > 1:  # each worker builds its app (and reads the settings) itself
        uvicorn.run("stadtpuls.api.main:create_app", factory=True, workers=args.workers, **common)
    else:
        from .main import create_app

        uvicorn.run(create_app(settings), **common)
    return 0


def setup(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", help="bind address (default STADTPULS_API_HOST)")
    p.add_argument("--port", type=int, help="port (default STADTPULS_API_PORT)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--access-log", action="store_true", help="log every request")
    p.add_argument(
        "--proxy-headers",
        action="store_true",
        help="trust X-Forwarded-For from --forwarded-allow-ips (behind a reverse proxy)",
    )
    p.add_argument("--forwarded-allow-ips", default="127.0.0.1", help="proxies trusted for --proxy-headers")
    p.set_defaults(func=_run)
