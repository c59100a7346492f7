"""The `related-articles` command: the batch commands plus `serve`."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from typing import TYPE_CHECKING, Any

from embeddings import logs
from embeddings.cli import add_accept_loss, add_common, make_parser, run, settings_from
from embeddings.settings import Settings, load_settings

if TYPE_CHECKING:
    from fastapi import FastAPI


def run_serve(args: argparse.Namespace) -> int:
    """`related-articles serve`: one process, or RELATED_WORKERS processes on one port."""
    import uvicorn

    from service.app import create_app
    from service.protocol import limited_protocol

    settings = settings_from(args, "host", "port", "accept_write_log_loss", "workers")
    workers = settings.workers or os.cpu_count() or 1
    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "log_config": None,  # uvicorn's records go through our handler; the app logs its own access
        "access_log": False,
        "timeout_graceful_shutdown": 10,
    }
    if workers == 1:
        _configure_logging(settings)
        # http: httptools (uvicorn's fast path) with a bounded head, a read timeout and JSON refusals.
        uvicorn.run(create_app(settings), http=limited_protocol(settings), **common)
        return 0
    # Workers are new processes that import the app by name: they read the settings from the
    # environment, so the command line's options go there first; a loss is accepted here, once.
    os.environ.update(_as_environment(args))
    if settings.accept_write_log_loss:
        _accept_loss(settings)
        os.environ.pop("RELATED_ACCEPT_WRITE_LOG_LOSS", None)
    _configure_logging(settings)
    uvicorn.run(
        "service.cli:worker_app",
        factory=True,
        workers=workers,
        http="service.protocol:ConfiguredProtocol",
        **common,
    )
    return 0


def worker_app() -> FastAPI:
    """The app of one worker process, from the environment's settings."""
    from service.app import create_app
    from service.protocol import configure

    _end_with_parent()
    settings = load_settings()
    _configure_logging(settings)
    configure(settings)
    return create_app(settings)


def _end_with_parent() -> None:
    """Ask Linux for SIGTERM when the parent `serve` dies (a `kill -9` of it): no orphan workers."""
    import ctypes
    import signal

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG


def _accept_loss(settings: Settings) -> None:
    from embeddings.live.binding import accept_loss_once, published_stamp

    path = settings.resolved_write_log()
    accept_loss_once(settings.bundles, path, published_stamp(settings.bundles))


def _configure_logging(settings: Settings) -> None:
    from service.middleware import RequestIdFilter

    handler = logs.configure_logging(settings.log_level, settings.log_format or "json")
    handler.addFilter(RequestIdFilter())


def _as_environment(args: argparse.Namespace) -> dict[str, str]:
    """RELATED_<NAME> for each option given on the command line."""
    names = ("bundles", "model", "cache_dir", "log_level", "scorer", "backend", "host", "port")
    out = {f"RELATED_{n.upper()}": str(getattr(args, n)) for n in names if getattr(args, n, None) is not None}
    return out


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    parser, sub = make_parser()
    serve = sub.add_parser("serve", help="serve the published bundle over HTTP")
    add_common(serve)
    serve.add_argument("--host", help="listen address (RELATED_HOST)")
    serve.add_argument("--port", type=int, help="listen port (RELATED_PORT)")
    serve.add_argument(
        "--workers", type=int, help="worker processes (RELATED_WORKERS; default: one per core)"
    )
    add_accept_loss(serve)
    serve.set_defaults(handler=run_serve)
    return run(parser, argv)


if __name__ == "__main__":
    sys.exit(main())
