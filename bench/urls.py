"""The product's URLs plus `/api/v1/bench/noop/`: a DRF endpoint that authenticates the bearer
token like every API call and then does nothing, the baseline of the HTTP figures."""

from django.urls import include, path
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class NoopView(APIView):
    @extend_schema(exclude=True)
    def post(self, request: Request) -> Response:
        return Response({"ok": True})


urlpatterns = [
    path("api/v1/bench/noop/", NoopView.as_view(), name="bench-noop"),
    path("", include("portal.urls")),
]
