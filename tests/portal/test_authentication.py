import pytest
from rest_framework.response import Response
from rest_framework.test import APIClient, APIRequestFactory
from rest_framework.views import APIView

from audit.models import AuditEvent
from organisation import services
from portal.authentication import TokenScopes
from portal.models import Scope

pytestmark = pytest.mark.django_db


class GateProbe(APIView):
    permission_classes = [TokenScopes]
    required_scopes = {"POST": Scope.GATE_READ}

    def get(self, request):
        return Response({"who": str(request.user)})

    def post(self, request):
        return Response({"who": str(request.user)})


def call(view, method, secret=None):
    factory = APIRequestFactory()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"} if secret else {}
    request = getattr(factory, method)("/probe/", **headers)
    return view.as_view()(request)


def test_valid_token_authenticates_as_its_service_account(ci):
    response = ci.client().get("/api/v1/whoami/")
    assert response.status_code == 200
    assert response.json()["kind"] == "service"
    assert response.json()["name"] == "ci-pipeline"
    assert set(response.json()["scopes"]) == set(Scope.values)


def test_wrong_token_is_401(ci):
    prefix = ci.secret.split("_")[1]
    forged = f"gh_{prefix}_{'0' * 64}"
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {forged}")
    response = client.get("/api/v1/whoami/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Bearer nonsense", "Bearer gh__x", "Bearer gh_unknown_abc"])
def test_malformed_or_unknown_token_is_401(header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    assert client.get("/api/v1/whoami/").status_code == 401


def test_missing_token_is_401():
    assert APIClient().get("/api/v1/whoami/").status_code == 401


def test_revoked_token_is_401_and_revocation_is_audited(ci):
    token = ci.account.tokens.get()
    services.service_token_revoke(actor=None, token=token)
    response = ci.client().get("/api/v1/whoami/")
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]
    assert AuditEvent.objects.filter(action="service_token.revoked").count() == 1


def test_disabled_account_is_401(ci):
    services.service_account_update(
        actor=None, service_account=ci.account, scopes=ci.account.scopes, is_active=False
    )
    assert ci.client().get("/api/v1/whoami/").status_code == 401


def test_missing_scope_is_403_and_named(service_caller):
    caller = service_caller(Scope.AUDIT_READ)
    response = call(GateProbe, "post", caller.secret)
    assert response.status_code == 403
    assert "gate:read" in str(response.data["detail"])


def test_scope_present_is_allowed(service_caller):
    caller = service_caller(Scope.GATE_READ)
    assert call(GateProbe, "post", caller.secret).status_code == 200


def test_method_without_scope_is_open_to_any_token(service_caller):
    caller = service_caller(Scope.AUDIT_READ)
    assert call(GateProbe, "get", caller.secret).status_code == 200


def test_only_the_hash_of_a_token_is_stored(ci):
    token = ci.account.tokens.get()
    assert ci.secret not in token.token_hash
    assert len(token.token_hash) == 64
    audit_bodies = "".join(AuditEvent.objects.values_list("body", flat=True))
    assert ci.secret not in audit_bodies


def test_unknown_scope_is_refused(org):
    from portal.exceptions import Conflict

    with pytest.raises(Conflict) as error:
        services.service_account_create(
            actor=None, name="bad", team=org["model-risk"], scopes=["root"]
        )
    assert error.value.code == "unknown_scope"
