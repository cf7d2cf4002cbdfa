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
from releases.kubernetes import MalformedReview
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


# What the server needs to answer at all: a review with a request uid. Anything else a review
# holds is judged, and a part it cannot read is a denial in the answer (200), as the API server
# expects, so the schema leaves the rest open rather than promise a refusal it will not give.
ADMISSION_REVIEW = {
    "type": "object",
    "required": ["request"],
    "properties": {
        "apiVersion": {"description": "admission.k8s.io/v1; another is a denial."},
        "kind": {"description": "AdmissionReview; another is a denial."},
        "request": {
            "type": "object",
            "required": ["uid"],
            "properties": {
                "uid": {"type": "string", "minLength": 1, "pattern": r"^[^\u0000]*$"},
                "object": {"description": "The workload; an unreadable one is a denial."},
            },
        },
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
                description="`{code: malformed_admission_review, detail}`: no request.uid."
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
