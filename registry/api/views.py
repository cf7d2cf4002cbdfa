"""The registry's REST endpoints (DESIGN.md, REST contract v1). Registrations answer 201 when
they record something and 200 when the same payload was recorded before, so CI can retry."""

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.authentication import TokenScopes, is_service_account
from portal.exceptions import NotFound
from portal.idempotency import idempotent
from portal.models import Scope
from portal.pagination import ReadCursor, page_of, paging_parameters, query_filters
from portal.serializers import Untrimmed
from registry import model_risk, selectors, services
from registry.api import serializers as s
from registry.models import Finding, Validation

ERRORS = {
    400: OpenApiResponse(description="Validation errors: field → messages."),
    403: OpenApiResponse(
        description=(
            "The token lacks `registry:write`, the caller is a person, or the model is another "
            "team's: `{code: token_wrong_team, detail}`."
        )
    ),
    409: OpenApiResponse(
        description="A different payload is recorded under the same key: `{code, detail}`."
    ),
}


class RegistryWrites(permissions.BasePermission):
    """Registrations come from CI with a token; people signed in with a session read only."""

    message = (
        "Registering is done by CI with a token that has the 'registry:write' scope, not by a "
        "person: run it from the pipeline (gatehouse_ci.py build, docs/ci.md)."
    )

    def has_permission(self, request, view) -> bool:
        return request.method in permissions.SAFE_METHODS or is_service_account(request.user)


class RegistryView(APIView):
    permission_classes = [permissions.IsAuthenticated, TokenScopes, RegistryWrites]
    required_scopes = {"POST": Scope.REGISTRY_WRITE}

    def register(self, request: Request, input_class, register, output_class, **extra):
        payload = input_class(data=request.data)
        payload.is_valid(raise_exception=True)
        # The services raise field → messages errors named as the payload names its fields;
        # the project's exception handler answers them as DRF's 400.
        record, created = register(
            actor=request.user, request=request, **extra, **payload.validated_data
        )
        return Response(
            output_class(record).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class DatasetVersionsView(RegistryView):
    @extend_schema(
        parameters=[OpenApiParameter("name", str, description="Only this dataset's versions.")],
        responses=s.DatasetVersionOutput(many=True),
    )
    def get(self, request: Request) -> Response:
        datasets = selectors.dataset_list()
        if request.query_params.get("name"):
            datasets = datasets.filter(name=request.query_params["name"])
        return Response(s.DatasetVersionOutput(datasets, many=True).data)

    @extend_schema(
        request=s.DatasetVersionInput,
        responses={
            201: s.DatasetVersionOutput,
            200: OpenApiResponse(s.DatasetVersionOutput, description="Recorded before."),
            **ERRORS,
        },
        description="Register a dataset version. Idempotent on (name, version).",
    )
    @idempotent
    def post(self, request: Request) -> Response:
        return self.register(
            request,
            s.DatasetVersionInput,
            services.dataset_version_register,
            s.DatasetVersionOutput,
        )


class ModelQuery(Untrimmed):
    q = serializers.CharField(
        max_length=200, required=False, help_text="Search in names and descriptions."
    )
    owner_team = serializers.SlugField(
        max_length=100, required=False, help_text="The owner team's slug."
    )
    risk_tier = serializers.ChoiceField([1, 2, 3], required=False)


class ByName(ReadCursor):
    ordering = "name"
    position_pattern = "[-a-zA-Z0-9_]{1,100}"  # a slug, as model names are


class ModelsView(RegistryView):
    @extend_schema(
        operation_id="v1_models_list",
        parameters=[ModelQuery, *paging_parameters(ByName)],
        responses={200: page_of("ModelPage", s.ModelOutput(many=True))},
        examples=[
            OpenApiExample(
                "A page of models",
                value={
                    "next": None,
                    "previous": None,
                    "results": [
                        {
                            "id": 3,
                            "name": "fraud-score",
                            "owner_team": "data-science",
                            "description": "Card fraud score.",
                            "risk_tier": 1,
                            "created_at": "2026-03-02T10:00:00+01:00",
                        }
                    ],
                },
                response_only=True,
            )
        ],
        description=(
            "Registered models by name; cursor paging. Open to every caller (CI finds its "
            "models here); the inventory entry of one is `models/{name}/inventory/`."
        ),
    )
    def get(self, request: Request) -> Response:
        filters = query_filters(ModelQuery, request)
        paginator = ByName()
        page = paginator.paginate_queryset(selectors.model_list(**filters), request, view=self)
        return paginator.get_paginated_response(s.ModelOutput(page, many=True).data)

    @extend_schema(
        request=s.ModelInput,
        responses={
            201: s.ModelOutput,
            200: OpenApiResponse(s.ModelOutput, description="Recorded before."),
            404: OpenApiResponse(description="`unknown_team`: no team has the owner's slug."),
            **ERRORS,
        },
        description="Register a model. Idempotent on its name.",
    )
    @idempotent
    def post(self, request: Request) -> Response:
        return self.register(request, s.ModelInput, services.model_register, s.ModelOutput)


class ModelVersionsView(RegistryView):
    @extend_schema(
        parameters=[
            OpenApiParameter("commit_sha", str, description="Versions built from this commit."),
            OpenApiParameter("version", str),
            OpenApiParameter("artifact_sha256", str),
        ],
        responses={200: s.ModelVersionOutput(many=True), 404: OpenApiResponse()},
    )
    def get(self, request: Request, name: str) -> Response:
        versions = selectors.model_versions(
            model=selectors.model_get(name=name),
            commit_sha=request.query_params.get("commit_sha", ""),
            version=request.query_params.get("version", ""),
            artifact_sha256=request.query_params.get("artifact_sha256", ""),
        )
        return Response(s.ModelVersionOutput(versions, many=True).data)

    @extend_schema(
        request=s.ModelVersionInput,
        responses={
            201: s.ModelVersionOutput,
            200: OpenApiResponse(s.ModelVersionOutput, description="Recorded before."),
            **ERRORS,
        },
        description=(
            "CI registers a build. Idempotent on (model, version), or on (model, commit, build "
            "id) when `version` is omitted. `unknown_commit` (409) when the repository has a "
            "mirror that lacks the commit."
        ),
    )
    @idempotent
    def post(self, request: Request, name: str) -> Response:
        selectors.model_get(name=name)
        return self.register(
            request,
            s.ModelVersionInput,
            services.model_version_register,
            lambda version: s.ModelVersionOutput(
                selectors.model_version_get(model_name=name, version=version.version)
            ),
            model=name,
        )


class ModelVersionView(APIView):
    @extend_schema(responses={200: s.ModelVersionOutput, 404: OpenApiResponse()})
    def get(self, request: Request, name: str, version: str) -> Response:
        found = selectors.model_version_get(model_name=name, version=version)
        return Response(s.ModelVersionOutput(found).data)


class ModelInventoryView(APIView):
    """The model's inventory entry (issue 16): anyone reads it; its owner team, Model Risk and
    administrators change it, signed in (a token is refused: `people_only`)."""

    @extend_schema(responses={200: s.InventoryOutput, 404: OpenApiResponse()})
    def get(self, request: Request, name: str) -> Response:
        return Response(s.InventoryOutput(selectors.model_get(name=name)).data)

    @extend_schema(
        request=s.InventoryInput,
        responses={200: s.InventoryOutput, 400: ERRORS[400], 403: ERRORS[403]},
    )
    def post(self, request: Request, name: str) -> Response:
        changes = s.InventoryInput(data=request.data)
        changes.is_valid(raise_exception=True)
        model = model_risk.model_inventory_update(
            actor=request.user,
            model=selectors.model_get(name=name),
            request=request,
            **changes.validated_data,
        )
        return Response(s.InventoryOutput(model).data)


class InventoryView(APIView):
    """The model inventory, as its page lists and filters it; open to every reader."""

    @extend_schema(
        operation_id="v1_inventory_list",
        parameters=[s.InventoryFilters, *paging_parameters(ByName)],
        responses={200: s.InventoryPage, 400: ERRORS[400]},
        description="Every model's inventory entry by name, cursor paging.",
    )
    def get(self, request: Request) -> Response:
        filters = selectors.InventoryFilters(**query_filters(s.InventoryFilters, request))
        paginator = ByName()
        page = paginator.paginate_queryset(selectors.model_inventory(filters=filters), request)
        return paginator.get_paginated_response(s.InventoryOutput(page, many=True).data)


MODEL_RISK_ERRORS = {
    400: ERRORS[400],
    403: OpenApiResponse(
        description="`{code, detail}`: a token without `validations:write`, `token_wrong_team` "
        "(the token does not act for Model Risk), `token_not_independent` (it also acts for "
        "the model's owner team), `not_model_risk`, `validator_not_independent`, "
        "`validator_authored_commit`, `commits_unknown`."
    ),
    404: OpenApiResponse(description="No such model or validation."),
}


class ModelRiskView(APIView):
    """Model Risk's writes: its people signed in, or a token with `validations:write` that acts
    for Model Risk. Who may is asked before the payload is read, so a caller learns the rule,
    not the payload's shape; the services ask again."""

    permission_classes = [permissions.IsAuthenticated, TokenScopes]
    required_scopes = {"POST": Scope.VALIDATIONS_WRITE}

    def may_work_on(self, request: Request, model) -> None:
        denied = model_risk.model_risk_work_denial(request.user, model)
        if denied is not None:
            raise denied

    def validation(self, name: str, pk: int) -> Validation:
        found = (
            Validation.objects.filter(pk=pk, model__name=name)
            .select_related("model__owner_team")
            .first()
        )
        if found is None:
            raise NotFound("No such validation of this model.", code="unknown_validation")
        return found


def _validation_read(pk: int) -> Validation:
    return (
        Validation.objects.select_related("validator")
        .prefetch_related("covers", "findings__owner")
        .get(pk=pk)
    )


class ModelValidationsView(ModelRiskView):
    """The model's validations with their findings, open ones first then the newest; open to
    every reader. Model Risk opens one for a validator to conclude."""

    required_scopes = {"POST": Scope.VALIDATIONS_WRITE, "GET": None}

    @extend_schema(responses={200: s.ValidationOutput(many=True), 404: OpenApiResponse()})
    def get(self, request: Request, name: str) -> Response:
        model = selectors.model_get(name=name)
        validations = model.validations.select_related("validator").prefetch_related(
            "covers", "findings__owner"
        )
        return Response(s.ValidationOutput(validations, many=True).data)

    @extend_schema(
        request=s.ValidationOpenInput,
        responses={201: s.ValidationOutput, **MODEL_RISK_ERRORS},
        description=(
            "Open a validation of the model covering the versions named, for `validator` to "
            "conclude. It counts at the gate only once its validator concludes it, which is an "
            "electronic signature given in the browser (see `.../conclude/`). Retries may "
            "carry `Idempotency-Key`."
        ),
    )
    @idempotent
    def post(self, request: Request, name: str) -> Response:
        model = selectors.model_get(name=name)
        self.may_work_on(request, model)
        payload = s.ValidationOpenInput(data=request.data)
        payload.is_valid(raise_exception=True)
        opened = model_risk.validation_open(
            actor=request.user, model=model, request=request, **payload.validated_data
        )
        return Response(
            s.ValidationOutput(_validation_read(opened.pk)).data, status=status.HTTP_201_CREATED
        )


class ValidationFindingsView(ModelRiskView):
    @extend_schema(
        request=s.FindingInput,
        responses={
            201: s.FindingOutput,
            409: OpenApiResponse(description="`validation_concluded`: it was signed already."),
            **MODEL_RISK_ERRORS,
        },
        description=(
            "Record a finding of an open validation; its owner is told. A high finding open "
            "past its remediation date holds the model's changes where the policy requires "
            "validation (`findings_overdue`). Retries may carry `Idempotency-Key`."
        ),
    )
    @idempotent
    def post(self, request: Request, name: str, pk: int) -> Response:
        validation = self.validation(name, pk)
        self.may_work_on(request, validation.model)
        payload = s.FindingInput(data=request.data)
        payload.is_valid(raise_exception=True)
        finding = model_risk.finding_record(
            actor=request.user, validation=validation, request=request, **payload.validated_data
        )
        return Response(s.FindingOutput(finding).data, status=status.HTTP_201_CREATED)


class ValidationConcludeView(ModelRiskView):
    """Never over the API: concluding is the validator's electronic signature."""

    required_scopes: dict = {}

    @extend_schema(
        request=None,
        responses={
            403: OpenApiResponse(
                description="Always `signature_in_browser`: the validator concludes a "
                "validation on the model's page with their password, which the API never takes."
            ),
            404: OpenApiResponse(description="No such model or validation."),
        },
    )
    def post(self, request: Request, name: str, pk: int) -> Response:
        raise model_risk.validation_conclusion_refused(self.validation(name, pk))


class FindingCloseView(ModelRiskView):
    """Close a finding: its owner marks it remediated, Model Risk remediated or accepted, with a
    note. A token of Model Risk (`validations:write`) marks one remediated; accepting a risk is
    a person's decision (`people_only`)."""

    @extend_schema(
        request=s.FindingCloseInput,
        responses={200: s.FindingOutput, **MODEL_RISK_ERRORS},
    )
    def post(self, request: Request, name: str, pk: int) -> Response:
        finding = (
            Finding.objects.filter(pk=pk, validation__model__name=name)
            .select_related("validation__model__owner_team")
            .first()
        )
        if finding is None:
            raise NotFound("No such finding of this model.", code="unknown_finding")
        if is_service_account(request.user):
            self.may_work_on(request, finding.validation.model)
        closing = s.FindingCloseInput(data=request.data)
        closing.is_valid(raise_exception=True)
        closed = model_risk.finding_close(
            actor=request.user, finding=finding, request=request, **closing.validated_data
        )
        return Response(s.FindingOutput(closed).data)
