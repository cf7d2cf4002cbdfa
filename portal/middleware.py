"""Request ids for the audit trail, sign-in required on every page, and pages that say what
went wrong."""

import re
import uuid

from django.contrib.auth.middleware import LoginRequiredMiddleware
from django.http import Http404, HttpResponseBadRequest, HttpResponseNotAllowed, JsonResponse
from django.shortcuts import render
from django.urls import Resolver404, resolve

REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIdMiddleware:
    """Keeps the proxy's X-Request-ID when it is sane, else makes one; echoes it back."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        request.id = incoming if REQUEST_ID_PATTERN.match(incoming) else uuid.uuid4().hex
        response = self.get_response(request)
        response["X-Request-ID"] = request.id
        return response


class PagesLoginRequiredMiddleware(LoginRequiredMiddleware):
    """Every page needs a signed-in user. The API authenticates on its own (tokens answer 401, not
    a redirect), the admin has its own sign-in, and probes must answer anonymously."""

    open_prefixes = ("/api/", "/admin/", "/static/", "/healthz", "/readyz")

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.path.startswith(self.open_prefixes):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)


class ContentSecurityPolicyMiddleware:
    """Sends `settings.CONTENT_SECURITY_POLICY` on every HTML response: banks run air-gapped and
    the pages must never pull in anything but their own files."""

    def __init__(self, get_response):
        from django.conf import settings

        self.policy = settings.CONTENT_SECURITY_POLICY
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if self.policy and response.get("Content-Type", "").startswith("text/html"):
            response.setdefault("Content-Security-Policy", self.policy)
        return response


class RejectNulCharactersMiddleware:
    """A NUL character in an address or a header is never meaningful, and PostgreSQL refuses it
    in a query (a 500 where a filter, a token lookup, the sign-in lockout or the audit trail's
    user agent passes it on). In the path it names nothing that exists: 404, as the project's
    404 handler answers it (JSON under /api/). In the query string or a header: 400. Request
    bodies are checked by their forms and serializers."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "\x00" in request.path:
            raise Http404("No such address.")
        query = request.GET
        if any("\x00" in key or any("\x00" in v for v in query.getlist(key)) for key in query):
            return self._refuse(request, "The query string contains a NUL character.")
        if any("\x00" in name or "\x00" in value for name, value in request.headers.items()):
            return self._refuse(request, "A request header contains a NUL character.")
        return self.get_response(request)

    @staticmethod
    def _refuse(request, detail: str):
        if request.path.startswith("/api/"):
            return JsonResponse({"code": "invalid_characters", "detail": detail}, status=400)
        return HttpResponseBadRequest(detail, content_type="text/plain")


class MethodNotAllowedPageMiddleware:
    """Django's `require_POST`, `require_safe` and class-based views answer a wrong method with an
    empty 405; a person who follows a bookmark to a button's address deserves a page saying
    what to do instead. The API keeps DRF's JSON answer; the `Allow` header is kept."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            not isinstance(response, HttpResponseNotAllowed)
            or response.content
            or request.path.startswith("/api/")
        ):
            return response
        allowed = [method.strip() for method in response["Allow"].split(",") if method.strip()]
        page = render(
            request,
            "405.html",
            {
                "method": request.method,
                "allowed": allowed,
                "readable": "GET" in allowed,
                "page_path": request.path if "GET" in allowed else _page_above(request.path),
            },
            status=405,
        )
        page["Allow"] = response["Allow"]
        return page


def _page_above(path: str) -> str:
    """The nearest address above `path` that is a page: where a button posting to `path` sits
    (`/releases/change-requests/CR-42/submit/` belongs to `/releases/change-requests/CR-42/`)."""
    parts = path.strip("/").split("/")[:-1]
    while parts:
        candidate = "/" + "".join(f"{part}/" for part in parts)
        try:
            resolve(candidate)
        except Resolver404:
            parts.pop()
        else:
            return candidate
    return "/"
