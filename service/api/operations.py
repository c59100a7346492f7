"""What operators and load balancers read: liveness, readiness, the loaded index, Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.auth import is_writer
from service.deps import CorpusDep, LoadedDep, MetricsDep, SettingsDep
from service.errors import public_message, responses
from service.schemas import Health, IndexInfo, Readiness, json_response

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health)
@router.head("/healthz", include_in_schema=False)  # load balancers' probes
def healthz() -> Response:
    """The process is up."""
    return json_response(Health(status="ok"))


@router.get("/readyz", response_model=Readiness, responses=responses(503))
@router.head("/readyz", include_in_schema=False)
def readyz(corpus: CorpusDep) -> Response:
    """Ready once a bundle is loaded and the write log is sound (503 until then, with the reason)."""
    loaded = corpus.ready()
    return json_response(
        Readiness(
            status="ready",
            bundle=loaded.bundle.version,
            articles=len(loaded.snapshot),
            last_error=public_message(corpus.last_error) if corpus.last_error else None,
        )
    )


@router.get("/v1/index", response_model=IndexInfo, responses=responses(503))
def index_info(loaded: LoadedDep, request: Request, settings: SettingsDep) -> Response:
    """The loaded bundle: its manifest and counts (its full path for a caller with a write key)."""
    bundle, snapshot = loaded.bundle, loaded.snapshot
    operator = is_writer(settings, request.headers.get("authorization"))
    return json_response(
        IndexInfo(
            version=bundle.version,
            path=str(bundle.path) if operator else f"{bundle.path.parent.name}/{bundle.path.name}",
            loaded_at=loaded.loaded_at,
            manifest=bundle.manifest,
            stats=bundle.store.stats(),
            writes={"pending": snapshot.pending, "last_seq": snapshot.last_seq, "articles": len(snapshot)},
        )
    )


@router.get("/metrics", response_class=PlainTextResponse, include_in_schema=False)
def metrics(metrics: MetricsDep) -> PlainTextResponse:
    """Prometheus metrics, in the text exposition format."""
    return PlainTextResponse(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
