"""The validating admission webhook of Kubernetes and OpenShift (`admission.k8s.io/v1`).

The API server authenticates with a service account token holding `gate:read` (TLS, and mTLS
where the bank wants it, end in front of Django: docs/deploy.md). Whatever the review holds,
the answer is an AdmissionReview (200); only a body with no readable `request.uid` is 400, as
there is nothing to answer it with."""

import json

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.authentication import BearerTokenAuthentication, TokenScopes
from portal.models import Scope
from releases.kubernetes import API_VERSION, JUDGED_OPERATIONS, MalformedReview
from releases.services.admission import admission_review


class AdmissionStatus(serializers.Serializer):
    code = serializers.IntegerField()
    reason = serializers.CharField()
    message = serializers.CharField()


class AdmissionResponse(serializers.Serializer):
    uid = serializers.CharField()
    allowed = serializers.BooleanField()
    status = AdmissionStatus(required=False, help_text="On a denial: every reason, with its code.")
    warnings = serializers.ListField(child=serializers.CharField(), required=False)


class AdmissionReviewOutput(serializers.Serializer):
    apiVersion = serializers.ChoiceField(choices=["admission.k8s.io/v1"])
    kind = serializers.ChoiceField(choices=["AdmissionReview"])
    response = AdmissionResponse()


def _object(properties: dict | None = None, **more) -> dict:
    """An object the review may leave out or send as null (read as empty)."""
    return {"type": "object", "nullable": True, "properties": properties or {}, **more}


TEXT = {"type": "string", "nullable": True, "pattern": r"^[^\u0000]*$"}
STRINGS = _object(additionalProperties={"type": "string", "pattern": r"^[^\u0000]*$"})
METADATA = _object(
    {
        "namespace": TEXT,
        "name": TEXT,
        "generateName": TEXT,
        "labels": STRINGS,
        "annotations": STRINGS,
    }
)
CONTAINERS = {
    "type": "array",
    "nullable": True,
    "items": {"type": "object", "properties": {"image": TEXT}},
}
POD = _object(
    {
        "metadata": METADATA,
        "spec": _object({"containers": CONTAINERS, "initContainers": CONTAINERS}),
    }
)
# Where each judged kind keeps its pod (releases.kubernetes.POD_TEMPLATE_PATHS), all at once.
WORKLOAD = _object(
    {
        "metadata": METADATA,
        "spec": _object(
            {
                "containers": CONTAINERS,
                "initContainers": CONTAINERS,
                "template": POD,
                "jobTemplate": _object({"spec": _object({"template": POD})}),
            }
        ),
    }
)
REVIEW_REQUEST = {
    "type": "object",
    "required": ["uid"],
    "properties": {
        "uid": {"type": "string", "minLength": 1, "pattern": r"^[^\u0000]*$"},
        "operation": TEXT,
        "kind": _object({"kind": TEXT}),
        "namespace": TEXT,
        "name": TEXT,
        "userInfo": _object({"username": TEXT}),
        "object": WORKLOAD,
        "oldObject": WORKLOAD,
        "dryRun": {},
    },
    # A CREATE or UPDATE is judged on its object, in its namespace.
    "oneOf": [
        {
            "required": ["operation", "object", "namespace"],
            "properties": {
                "operation": {"enum": sorted(JUDGED_OPERATIONS)},
                "object": {"type": "object", "minProperties": 1},
                "namespace": {"type": "string", "minLength": 1},
            },
        },
        {
            "not": {
                "required": ["operation"],
                "properties": {"operation": {"enum": sorted(JUDGED_OPERATIONS)}},
            }
        },
    ],
}
ADMISSION_REVIEW = {
    "type": "object",
    "required": ["apiVersion", "kind", "request"],
    "properties": {
        "apiVersion": {"enum": [API_VERSION]},
        "kind": {"enum": ["AdmissionReview"]},
        "request": REVIEW_REQUEST,
    },
}


class AdmissionView(APIView):
    authentication_classes = [BearerTokenAuthentication]
    permission_classes = [permissions.IsAuthenticated, TokenScopes]
    required_scopes = {"POST": Scope.GATE_READ}

    @extend_schema(
        request={"application/json": ADMISSION_REVIEW},
        responses={
            200: AdmissionReviewOutput,
            400: OpenApiResponse(
                description="`{code: malformed_admission_review, detail}`: not a review the "
                "schema describes."
            ),
        },
        description=(
            "Kubernetes/OpenShift validating admission: an `admission.k8s.io/v1` "
            "AdmissionReview of a Deployment, StatefulSet, Job, CronJob or Pod. In a governed "
            "namespace the workload is allowed only with the `gatehouse.io/model` label and a "
            "digest (`gatehouse.io/artifact-sha256`, else an image pinned by digest) that the "
            "ledger deployed in that environment, or under an authorised emergency change. "
            "Every answer is recorded as a gate decision with purpose `admission`."
        ),
    )
    def post(self, request: Request) -> Response:
        try:
            body = json.loads(request.body)
        except (ValueError, RecursionError):  # not UTF-8, not JSON, nested beyond reason
            body = None
        try:
            answer = admission_review(actor=request.user, body=body, request=request)
        except MalformedReview as malformed:
            return Response(
                {"code": "malformed_admission_review", "detail": malformed.message},
                status=status.HTTP_400_BAD_REQUEST,
            )
        return Response(answer.as_review())
