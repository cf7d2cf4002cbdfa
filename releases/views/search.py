"""The search box's page: the same answer as `GET /api/v1/search/`, for people."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from portal.exceptions import BadRequest
from releases.selectors.search import search


@require_GET
def search_page(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "")
    result, error, status = None, "", 200
    if query.strip():
        try:
            result = search(query=query)
        except BadRequest as refused:
            error, status = refused.detail, refused.status_code
    return render(
        request,
        "releases/search.html",
        {"search_query": query, "result": result, "error": error},
        status=status,
    )
