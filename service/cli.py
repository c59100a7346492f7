"""The `related-articles` command: the batch commands plus `serve`."""

from __future__ import annotations

import argparse
import sys

from embeddings import logs
from embeddings.cli import add_accept_loss, add_common, make_parser, run, settings_from
from embeddings.live.writer_lock import WriterLock


def run_serve(args: argparse.Namespace) -> int:
    """`related-articles serve`."""
    import uvicorn

    from service.app import create_app
    from service.middleware import RequestIdFilter
    from service.protocol import limited_protocol

    settings = settings_from(args, "host", "port", "accept_write_log_loss")
    # Taken before anything loads, so a second service on the same bundles directory stops at once,
    # with one line; held until this process ends.
    writer_lock = WriterLock(settings.bundles)
    handler = logs.configure_logging(settings.log_level, settings.log_format or "json")
    handler.addFilter(RequestIdFilter())
    app = create_app(settings, writer_lock=writer_lock)
    # log_config=None: uvicorn's records go through our handler; the app writes its own access log.
    # http: httptools (uvicorn's fast path) with a bounded head, a read timeout and JSON refusals.
    uvicorn.run(
        app,
        http=limited_protocol(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    parser, sub = make_parser()
    serve = sub.add_parser("serve", help="serve the published bundle over HTTP")
    add_common(serve)
    serve.add_argument("--host", help="listen address (RELATED_HOST)")
    serve.add_argument("--port", type=int, help="listen port (RELATED_PORT)")
    add_accept_loss(serve)
    serve.set_defaults(handler=run_serve)
    return run(parser, argv)


if __name__ == "__main__":
    sys.exit(main())
