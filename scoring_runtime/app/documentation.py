"""The service's description of itself: /swagger.json (the OpenAPI documents) and the API page at /docs, under the
root and SERVICE_PATH_PREFIX.

/swagger.json requires authentication when SCORING_AUTH_SWAGGER says so. The page and its files do not: a browser
cannot send a bearer header when it navigates, and they hold nothing of the service. The page's script fetches the
document itself, asking for a key when /swagger.json answers 401, and /score checks the key as it always does.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from scoring_runtime.app.api_page import PAGE_PATH, ApiPage
from scoring_runtime.app.responses import FAILED_HEADER, options_response
from scoring_runtime.app.swagger import DEFAULT_VERSION, Swaggers
from scoring_runtime.auth import Authenticator
from scoring_runtime.azureml.forms import parse_query
from scoring_runtime.errors import InternalError

SWAGGER_PATH = "/swagger.json"


class Documentation:
    def __init__(self, prefixes: tuple[str, ...], path_prefix: str, auth: Authenticator | None, page: bool) -> None:
        self._prefixes = prefixes
        self._auth = auth if auth is not None and auth.protect_swagger else None
        self._swaggers: Swaggers | None = None
        self._page = ApiPage(path_prefix) if page else None

    def routes(self, prefix: str) -> list[Route]:
        routes = [Route(f"{prefix}{SWAGGER_PATH}", self._swagger, methods=["GET", "OPTIONS"])]
        if self._page is not None:
            routes += [Route(path, app, methods=["GET", "OPTIONS"]) for path, app in self._page.paths(prefix).items()]
        return routes

    def route_labels(self) -> dict[str, str]:
        """The metrics' route label of each path: the page and its files count as /docs."""
        labels = {f"{prefix}{SWAGGER_PATH}": SWAGGER_PATH for prefix in self._prefixes}
        if self._page is not None:
            labels |= {path: PAGE_PATH for prefix in self._prefixes for path in self._page.paths(prefix)}
        return labels

    def attach(self, swaggers: Swaggers) -> None:
        """At start-up, once the script is loaded: its documents, and the page that shows them."""
        self._swaggers = swaggers
        if self._page is not None:
            self._page.publish(swaggers.versions)

    async def _swagger(self, request: Request) -> Response:
        if self._auth is not None:
            self._auth.check(request.headers.get("authorization"))
        if request.method == "OPTIONS":
            return options_response("GET, HEAD, OPTIONS")
        if self._swaggers is None:
            raise InternalError()
        version = parse_query(request.scope["query_string"]).get("version", DEFAULT_VERSION)
        response = Response(self._swaggers.get(version), media_type="application/json")
        response.raw_headers.append((FAILED_HEADER, b"False"))
        return response
