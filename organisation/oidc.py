"""Single sign-on at the bank's OpenID Connect provider (portal/oidc_settings.py): where its
endpoints are, what makes an ID token trustworthy, the sign-in backend and pages
(mozilla-django-oidc's code flow with PKCE), and the round trip that confirms an electronic
signature there (rule 6; whether an answer confirms a signature is organisation/step_up.py, what
is signed is releases' and registry's)."""

import base64
import hashlib
import logging
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlencode, urlsplit

import jwt
import requests
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import SuspiciousOperation
from django.http import Http404, HttpRequest
from django.shortcuts import redirect
from django.utils.decorators import method_decorator
from django.views import View
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import (
    OIDCAuthenticationCallbackView,
    OIDCAuthenticationRequestView,
)

from organisation.services import user_sign_in_from_provider
from portal.models import ProviderIdentity

logger = logging.getLogger(__name__)


class ProviderError(Exception):
    """The identity provider could not be reached, or answered something that cannot be
    trusted. Nobody is signed in and nothing is signed."""


def provider_enabled() -> bool:
    return bool(getattr(settings, "OIDC_OP_ISSUER", ""))


def provider_name() -> str:
    return getattr(settings, "GATEHOUSE_OIDC_PROVIDER_NAME", "single sign-on")


def signs_at_provider(user) -> bool:
    """Whether `user` confirms a signature by signing in again at the identity provider rather
    than by typing a password: an account single sign-on created, which has none."""
    return (
        provider_enabled()
        and not user.has_usable_password()
        and ProviderIdentity.objects.filter(user=user, issuer=settings.OIDC_OP_ISSUER).exists()
    )


def form_action_to_provider(policy: str) -> str:
    """A page's Content Security Policy that lets its form lead to the provider's sign-in page:
    the sign form is answered with a redirect there, which browsers hold to `form-action`."""
    endpoint = settings.OIDC_OP_AUTHORIZATION_ENDPOINT or settings.OIDC_OP_ISSUER
    parts = urlsplit(endpoint)
    return policy.replace(
        "form-action 'self'", f"form-action 'self' {parts.scheme}://{parts.netloc}"
    )


@dataclass(frozen=True)
class Endpoints:
    authorization: str
    token: str
    userinfo: str
    jwks: str


def _timeout() -> float:
    return getattr(settings, "OIDC_TIMEOUT", 10)


@lru_cache(maxsize=8)
def _discovery(issuer: str) -> dict:
    """The issuer's discovery document (OpenID Connect Discovery 1.0), read once per process.
    A document that names another issuer is refused: its keys would vouch for someone else."""
    timeout = _timeout()
    try:
        response = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=timeout)
        response.raise_for_status()
        document = response.json()
    except (requests.RequestException, ValueError) as error:
        raise ProviderError(
            f"The identity provider's configuration cannot be read: {error}"
        ) from error
    if str(document.get("issuer", "")).rstrip("/") != issuer:
        raise ProviderError(f"The discovery document of {issuer} names another issuer.")
    return document


def provider_endpoints() -> Endpoints:
    """The endpoints set in the environment, the others from the discovery document."""
    configured = {
        "authorization": settings.OIDC_OP_AUTHORIZATION_ENDPOINT,
        "token": settings.OIDC_OP_TOKEN_ENDPOINT,
        "userinfo": settings.OIDC_OP_USER_ENDPOINT,
        "jwks": settings.OIDC_OP_JWKS_ENDPOINT,
    }
    if not all(configured.values()):
        document = _discovery(settings.OIDC_OP_ISSUER)
        discovered = {
            "authorization": document.get("authorization_endpoint", ""),
            "token": document.get("token_endpoint", ""),
            "userinfo": document.get("userinfo_endpoint", ""),
            "jwks": document.get("jwks_uri", ""),
        }
        configured = {name: value or discovered[name] for name, value in configured.items()}
    return Endpoints(**configured)


def _signing_key(header: dict):
    algorithm = settings.OIDC_RP_SIGN_ALGO
    if algorithm.startswith("HS"):
        return settings.OIDC_RP_CLIENT_SECRET
    timeout = _timeout()
    try:
        response = requests.get(provider_endpoints().jwks, timeout=timeout)
        response.raise_for_status()
        keys = response.json()["keys"]
    except (requests.RequestException, ValueError, KeyError) as error:
        raise ProviderError(f"The identity provider's keys cannot be read: {error}") from error
    candidates = [
        key
        for key in keys
        if key.get("use", "sig") == "sig"
        and key.get("alg", algorithm) == algorithm
        and ("kid" not in header or key.get("kid") == header["kid"])
    ]
    if len(candidates) != 1:
        raise ProviderError("No single key of the identity provider signed this ID token.")
    try:
        return jwt.PyJWK(candidates[0], algorithm=algorithm).key
    except jwt.PyJWTError as error:
        raise ProviderError(f"The identity provider's key cannot be used: {error}") from error


def id_token_claims(id_token: str) -> dict:
    """The claims of an ID token that the provider signed for this portal (OpenID Connect Core
    3.1.3.7): signed in the configured algorithm by one of the keys the provider publishes,
    issued by the configured issuer, for this client (also as `azp` when the audience names
    others), not expired, naming its subject. Which request it answers (`nonce`) and when the
    person signed in (`auth_time`) are for the caller to judge."""
    algorithm = settings.OIDC_RP_SIGN_ALGO
    try:
        header = jwt.get_unverified_header(id_token)
    except jwt.PyJWTError as error:
        raise ProviderError(f"The ID token cannot be read: {error}") from error
    if header.get("alg") != algorithm:
        raise ProviderError(f"The ID token is signed with {header.get('alg')!r}, not {algorithm}.")
    try:
        claims = jwt.decode(
            id_token,
            _signing_key(header),
            algorithms=[algorithm],
            audience=settings.OIDC_RP_CLIENT_ID,
            issuer=settings.OIDC_OP_ISSUER,
            options={"require": ["iss", "aud", "exp", "iat", "sub"]},
        )
    except jwt.PyJWTError as error:
        raise ProviderError(f"The ID token is refused: {error}") from error
    audience = claims["aud"]
    several = isinstance(audience, list) and len(audience) > 1
    if several and claims.get("azp") != settings.OIDC_RP_CLIENT_ID:
        raise ProviderError("The ID token was issued to another client.")
    return claims


def groups_of(claims: dict) -> list[str] | None:
    """The person's groups from the configured claim; None when the provider sent none."""
    value = claims.get(getattr(settings, "GATEHOUSE_OIDC_GROUPS_CLAIM", "groups"))
    if value is None:
        return None
    return [str(value)] if isinstance(value, str) else [str(group) for group in value]


class ProviderBackend(OIDCAuthenticationBackend):
    """Signs people in at the identity provider. mozilla-django-oidc runs the code flow; this
    checks the ID token in full (`id_token_claims`, where mozilla-django-oidc leaves the audience
    and issuer unchecked) and finds the account by issuer and subject, never by e-mail
    (`user_sign_in_from_provider`), bringing memberships in line with the groups."""

    def __init__(self, *args, **kwargs):
        # Django makes a backend for every request that has a session, so nothing here may wait
        # on the provider: its endpoints are looked up when a sign-in needs them.
        self.UserModel = get_user_model()
        self.OIDC_RP_CLIENT_ID = getattr(settings, "OIDC_RP_CLIENT_ID", "")
        self.OIDC_RP_CLIENT_SECRET = getattr(settings, "OIDC_RP_CLIENT_SECRET", "")
        self.OIDC_RP_SIGN_ALGO = getattr(settings, "OIDC_RP_SIGN_ALGO", "RS256")

    @property
    def OIDC_OP_TOKEN_ENDPOINT(self) -> str:
        return provider_endpoints().token

    @property
    def OIDC_OP_USER_ENDPOINT(self) -> str:
        return provider_endpoints().userinfo

    def authenticate(self, request, **kwargs):
        # Only the provider's callback passes a nonce; a password sign-in is not for this backend.
        if request is None or "nonce" not in kwargs or not provider_enabled():
            return None
        return super().authenticate(request, **kwargs)

    def verify_token(self, token, **kwargs):
        claims = id_token_claims(token)
        nonce = kwargs.get("nonce")
        if not nonce or claims.get("nonce") != nonce:
            raise SuspiciousOperation("The ID token answers another sign-in (nonce).")
        return claims

    def get_or_create_user(self, access_token, id_token, payload):
        userinfo = self.get_userinfo(access_token, id_token, payload)
        if userinfo.get("sub") != payload["sub"]:
            raise SuspiciousOperation("The user info is about someone else than the ID token.")
        groups = groups_of(userinfo)
        return user_sign_in_from_provider(
            issuer=settings.OIDC_OP_ISSUER,
            claims={**userinfo, "sub": payload["sub"]},
            groups=groups if groups is not None else groups_of(payload),
            mapping=settings.GATEHOUSE_OIDC_TEAM_GROUPS,
            username_claim=settings.GATEHOUSE_OIDC_USERNAME_CLAIM,
            request=self.request,
        )


def _sign_in_failed(request: HttpRequest):
    messages.error(
        request,
        f"Signing in with {provider_name()} did not succeed. Try again, or ask an "
        "administrator if it keeps failing.",
    )
    return redirect("login")


@method_decorator(login_not_required, name="dispatch")
class ProviderSignIn(OIDCAuthenticationRequestView):
    """Sends the browser to the identity provider ("Sign in with …" on the sign-in page)."""

    def __init__(self, **kwargs):
        View.__init__(self, **kwargs)

    def get(self, request):
        if not provider_enabled():
            raise Http404("Single sign-on is not configured.")
        try:
            self.OIDC_OP_AUTH_ENDPOINT = provider_endpoints().authorization
        except ProviderError:
            logger.exception("single sign-on: the provider cannot be reached")
            return _sign_in_failed(request)
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID
        return super().get(request)


@method_decorator(login_not_required, name="dispatch")
class ProviderSignInReturn(OIDCAuthenticationCallbackView):
    """Where the provider sends the browser back: the backend checks its answer and signs the
    person in; anything it cannot trust signs nobody in."""

    def get(self, request):
        if not provider_enabled():
            raise Http404("Single sign-on is not configured.")
        try:
            return super().get(request)
        except (SuspiciousOperation, ProviderError, requests.RequestException):
            logger.warning("single sign-on: an answer was refused", exc_info=True)
            return self.login_failure()

    def login_failure(self):
        return _sign_in_failed(self.request)


def _code_challenge(code_verifier: str) -> str:
    digest = hashlib.sha256(code_verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def step_up_url(
    *, redirect_uri: str, state: str, nonce: str, code_verifier: str, acr_values: str
) -> str:
    """Where to send a signer to sign in again: `prompt=login` and `max_age=0` ask the provider
    for a new sign-in whatever session it holds, `acr_values` for the assurance the policy
    wants. The state and nonce name the pending signature (releases.SignatureStepUp)."""
    params = {
        "response_type": "code",
        "client_id": settings.OIDC_RP_CLIENT_ID,
        "redirect_uri": redirect_uri,
        "scope": settings.OIDC_RP_SCOPES,
        "state": state,
        "nonce": nonce,
        "prompt": "login",
        "max_age": "0",
        "code_challenge": _code_challenge(code_verifier),
        "code_challenge_method": "S256",
    }
    if acr_values:
        params["acr_values"] = acr_values
    return f"{provider_endpoints().authorization}?{urlencode(params)}"


@dataclass(frozen=True)
class ProviderAnswer:
    """What the provider vouched for when a signer came back: the ID token's claims (signature,
    issuer, audience and expiry checked) and their groups at that moment (None: not sent)."""

    claims: dict
    groups: list[str] | None


def step_up_answer(*, code: str, code_verifier: str, redirect_uri: str) -> ProviderAnswer:
    """Trade the code the provider sent back for its tokens and check the ID token."""
    backend = ProviderBackend()
    try:
        tokens = backend.get_token(
            {
                "client_id": settings.OIDC_RP_CLIENT_ID,
                "client_secret": settings.OIDC_RP_CLIENT_SECRET,
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": code_verifier,
            }
        )
        claims = id_token_claims(tokens.get("id_token", ""))
        userinfo = backend.get_userinfo(tokens.get("access_token"), tokens["id_token"], claims)
    except (requests.RequestException, ValueError, KeyError) as error:
        raise ProviderError(
            f"The identity provider did not confirm the sign-in: {error}"
        ) from error
    if userinfo.get("sub") != claims["sub"]:
        raise ProviderError("The user info is about someone else than the ID token.")
    groups = groups_of(userinfo)
    return ProviderAnswer(claims=claims, groups=groups if groups is not None else groups_of(claims))


def step_up_returned(
    request: HttpRequest, *, code_verifier: str, redirect_uri: str
) -> ProviderAnswer:
    """The provider's answer the browser brought back to `redirect_uri` for a pending signature:
    an error or no code (the signer gave up there) is refused like an untrustworthy token."""
    if request.GET.get("error") or not request.GET.get("code"):
        raise ProviderError(request.GET.get("error", "no code"))
    return step_up_answer(
        code=request.GET["code"], code_verifier=code_verifier, redirect_uri=redirect_uri
    )


def step_up_unreachable() -> str:
    return (
        f"{provider_name()} cannot be reached; nothing was signed. Try again in a few minutes; "
        "if it stays out of reach, tell an administrator."
    )


def step_up_not_confirmed() -> str:
    return (
        f"{provider_name()} did not confirm your sign-in; nothing was signed. Sign again, and "
        "finish signing in there when it asks."
    )
