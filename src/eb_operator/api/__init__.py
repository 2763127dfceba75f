"""The IVOA ExecutionBroker REST service over the broker's custom resources.

``create_app(settings)`` builds the FastAPI application; ``serve(host, port, settings)`` runs it
with uvicorn (``eb-operator api``). Settings come from ``EB_API_*`` environment variables
(``ApiSettings``); docs/api.md lists them and every endpoint.
"""

from __future__ import annotations

from eb_operator.api.app import create_app
from eb_operator.api.settings import ApiSettings

__all__ = ["ApiSettings", "create_app", "serve"]


def serve(host: str = "0.0.0.0", port: int = 8080, settings: ApiSettings | None = None) -> None:
    """Run the REST service until interrupted (SIGINT/SIGTERM stop it gracefully)."""
    import uvicorn

    app = create_app(settings)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="info",
        access_log=False,
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=10,
    )
