"""A real OpenID provider for the single sign-on tests: tests/oidc/provider.js (panva's
oidc-provider on Node.js) on a free loopback port, with the portal registered as its client and
the people of a JSON file the tests rewrite. `npm ci` in tests/oidc installs it (`make install`
and `.ci/run` do).

`ProviderBrowser` plays the person's browser at the provider: it follows the provider's
redirects, fills its login form and returns the address the provider sends the browser back to
(the portal's callback with `code` and `state`), which the test then opens with Django's client.
"""

import base64
import hashlib
import json
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import pytest
import requests

from portal.oidc_settings import provider_settings

HERE = Path(__file__).resolve().parent
NODE = shutil.which("node") or "/usr/bin/node"
CLIENT_ID = "gatehouse"
CLIENT_SECRET = "test-client-secret-0123456789"
PASSWORD_ACR = "urn:gatehouse:acr:password"
MFA_ACR = "urn:gatehouse:acr:mfa"
TESTSERVER = "http://testserver"
CALLBACKS = ("/oidc/callback/", "/releases/signature/returned/")


@dataclass
class Person:
    """Someone the provider knows: `sub` is how it names them to the portal."""

    sub: str
    username: str
    password: str
    given_name: str
    family_name: str
    email: str
    groups: list[str] = field(default_factory=list)


@dataclass
class LoginPage:
    """What the provider did with one authorization request."""

    returned_to: str  # the portal's address the browser is sent back to
    asked_to_sign_in: bool  # whether the provider showed its login form


class ProviderBrowser:
    """One person's browser as the provider sees it (its cookies are the provider's session)."""

    def __init__(self, provider: "OpenIDProvider"):
        self.provider = provider
        self.session = requests.Session()

    def _absolute(self, location: str) -> str:
        return urljoin(self.provider.issuer + "/", location)

    def authorize(
        self,
        authorization_url: str,
        person: Person | None = None,
        *,
        password: str | None = None,
        acr: str = PASSWORD_ACR,
        age: int = 0,
    ) -> LoginPage:
        """Open the authorization address; sign `person` in when the provider asks (with the
        assurance `acr`, reporting the login `age` seconds old), and follow the provider until
        it sends the browser away from itself."""
        url, asked = authorization_url, False
        for _ in range(12):
            response = self.session.get(url, allow_redirects=False, timeout=10)
            if response.status_code == 200 and "document.forms[0].submit()" in response.text:
                # A page a browser submits by itself (the provider ending another person's
                # session before it signs this one in).
                action = response.text.split('action="', 1)[1].split('"', 1)[0]
                fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', response.text))
                response = self.session.post(
                    self._absolute(action), data=fields, allow_redirects=False, timeout=10
                )
            elif response.status_code == 200 and 'name="password"' in response.text:
                if person is None:
                    raise AssertionError("The provider asked for a sign-in nobody gave.")
                asked = True
                action = response.text.split('action="', 1)[1].split('"', 1)[0]
                response = self.session.post(
                    self._absolute(action),
                    data={
                        "username": person.username,
                        "password": person.password if password is None else password,
                        "acr": acr,
                        "age": str(age),
                    },
                    allow_redirects=False,
                    timeout=10,
                )
            if response.status_code not in (302, 303):
                raise AssertionError(
                    f"The provider answered {response.status_code}: {response.text}"
                )
            url = self._absolute(response.headers["Location"])
            if not url.startswith(self.provider.issuer + "/"):
                return LoginPage(returned_to=url, asked_to_sign_in=asked)
        raise AssertionError("The provider kept redirecting.")


@dataclass
class OpenIDProvider:
    issuer: str
    users_file: Path
    log: Path
    process: subprocess.Popen | None = None

    @contextmanager
    def paused(self) -> Iterator[None]:
        """The provider stops answering, as one that hangs does: connections are accepted by
        the kernel and nothing comes back."""
        self.process.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            self.process.send_signal(signal.SIGCONT)

    def people(self, *people: Person) -> None:
        """Who the provider knows from now on (it reads the file at every sign-in)."""
        self.users_file.write_text(json.dumps([asdict(person) for person in people]))

    def browser(self) -> ProviderBrowser:
        return ProviderBrowser(self)

    def id_token(self, person: Person, *, nonce: str = "a-nonce", **login) -> str:
        """An ID token the provider issues to the portal for `person`, obtained as the portal
        would (code flow with PKCE), for tests of what the portal makes of a token."""
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        redirect_uri = TESTSERVER + CALLBACKS[0]
        query = urlencode(
            {
                "client_id": CLIENT_ID,
                "response_type": "code",
                "scope": "openid",
                "redirect_uri": redirect_uri,
                "state": "a-state",
                "nonce": nonce,
                "code_challenge": challenge.rstrip(b"=").decode(),
                "code_challenge_method": "S256",
            }
        )
        returned = self.browser().authorize(f"{self.issuer}/auth?{query}", person, **login)
        code = parse_qs(urlsplit(returned.returned_to).query)["code"][0]
        response = requests.post(
            f"{self.issuer}/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "code_verifier": verifier,
            },
            timeout=10,
        )
        response.raise_for_status()
        return response.json()["id_token"]

    def environ(self, **overrides: str) -> dict[str, str]:
        """The portal's OIDC_* variables for this provider; endpoints come from discovery."""
        return {
            "OIDC_ISSUER": self.issuer,
            "OIDC_CLIENT_ID": CLIENT_ID,
            "OIDC_CLIENT_SECRET": CLIENT_SECRET,
            "OIDC_SCOPES": "openid email profile groups",
            "OIDC_PROVIDER_NAME": "Bank SSO",
            **overrides,
        }

    def configure(self, settings, **overrides: str) -> None:
        """Switch single sign-on on in Django's `settings` fixture, as the environment would."""
        for name, value in provider_settings(self.environ(**overrides)).items():
            setattr(settings, name, value)
        settings.AUTHENTICATION_BACKENDS = [
            *settings.AUTHENTICATION_BACKENDS,
            "organisation.oidc.ProviderBackend",
        ]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def provider_running(folder: Path, portal_urls: list[str]) -> Iterator[OpenIDProvider]:
    """Start provider.js with the portal's callbacks at each of `portal_urls` registered."""
    if not (HERE / "node_modules" / "oidc-provider").is_dir():
        pytest.fail(
            "The test provider is not installed: run `npm ci` in tests/oidc (make install)."
        )
    port = free_port()
    provider = OpenIDProvider(
        issuer=f"http://127.0.0.1:{port}",
        users_file=folder / "people.json",
        log=folder / "provider.log",
    )
    provider.people()
    environment = {
        "PATH": str(Path(NODE).parent),
        "PORT": str(port),
        "CLIENT_ID": CLIENT_ID,
        "CLIENT_SECRET": CLIENT_SECRET,
        "REDIRECT_URIS": ",".join(url + path for url in portal_urls for path in CALLBACKS),
        "USERS_FILE": str(provider.users_file),
    }
    with provider.log.open("w") as log:
        server = provider.process = subprocess.Popen(
            [NODE, str(HERE / "provider.js")],
            cwd=HERE,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                requests.get(f"{provider.issuer}/.well-known/openid-configuration", timeout=1)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail(f"The test provider did not start:\n{provider.log.read_text()}")
                time.sleep(0.1)
        yield provider
    finally:
        server.terminate()
        server.wait(timeout=10)


def portal_address(url: str) -> str:
    """The path and query of an address on the portal, for Django's test client."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path
