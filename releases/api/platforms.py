"""Receivers of the platforms' own webhooks: GitLab's deployment events and a GitHub App's
deployment protection rule events (docs/ci.md, "A gate the pipeline cannot skip").

They speak the platforms' payloads and are authenticated by the platforms' secrets (GitLab's
`X-Gitlab-Token`, GitHub's `X-Hub-Signature-256`), not by Gatehouse tokens, so they are not part
of the API that CI and tools call and stay out of the OpenAPI schema. A wrong secret is 403 before
the body is read; a body that is not the event's shape is 400; an event that is not a held
deployment, or names a repository Gatehouse does not know, is 202 and ignored (and logged).
"""

import hmac
import json
import logging

from django.conf import settings
from drf_spectacular.utils import extend_schema
from gitlab.exceptions import GitlabError
from rest_framework import permissions, serializers, status
from rest_framework.exceptions import ParseError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from registry import github
from registry.models import Repository
from registry.services import normalise_repository_url
from releases.services import platform_gate

logger = logging.getLogger(__name__)

SHA1 = r"^[0-9a-f]{40}$"


class GitLabProject(serializers.Serializer):
    id = serializers.IntegerField(min_value=1)


class GitLabDeploymentEvent(serializers.Serializer):
    """The fields of GitLab's deployment event that Gatehouse reads; the rest is ignored."""

    object_kind = serializers.CharField()
    status = serializers.CharField()
    deployment_id = serializers.IntegerField(min_value=1)
    environment = serializers.CharField(max_length=255)
    project = GitLabProject()


class GitHubDeployment(serializers.Serializer):
    sha = serializers.RegexField(SHA1)
    ref = serializers.CharField(allow_blank=True, required=False)


class GitHubInstallation(serializers.Serializer):
    id = serializers.IntegerField(min_value=1)


class GitHubRepository(serializers.Serializer):
    full_name = serializers.CharField(max_length=255)
    html_url = serializers.CharField(max_length=500)
    clone_url = serializers.CharField(max_length=500, required=False)


class GitHubProtectionRuleEvent(serializers.Serializer):
    """The fields of GitHub's `deployment_protection_rule` event that Gatehouse reads."""

    action = serializers.CharField()
    environment = serializers.CharField(max_length=255)
    deployment_callback_url = serializers.CharField(max_length=2000)
    deployment = GitHubDeployment()
    installation = GitHubInstallation()
    repository = GitHubRepository()


def _ignored(detail: str) -> Response:
    logger.warning("Platform webhook ignored: %s", detail)
    return Response({"outcome": "ignored", "detail": detail}, status=status.HTTP_202_ACCEPTED)


def _answered(answer: platform_gate.PlatformAnswer) -> Response:
    return Response(
        {
            "outcome": "approved" if answer.allowed else "rejected",
            "gate_decisions": [decision.pk for decision in answer.decisions],
            "comment": answer.comment(),
        }
    )


def _refused(detail: str) -> Response:
    return Response({"code": "webhook_not_authentic", "detail": detail}, status=403)


def _unreachable(platform: str, error: Exception) -> Response:
    """The answer is recorded but did not reach the platform; the deployment stays held (fail
    closed) and the platform's webhook log offers to send the event again."""
    logger.error("%s could not be answered: %s", platform, error)
    return Response(
        {"code": "platform_unreachable", "detail": f"{platform} could not be answered: {error}"},
        status=status.HTTP_502_BAD_GATEWAY,
    )


class PlatformHookView(APIView):
    """Called by a platform, not by a person or a Gatehouse token."""

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]


class GitLabDeploymentHookView(PlatformHookView):
    @extend_schema(exclude=True)
    def post(self, request: Request) -> Response:
        token = request.headers.get("X-Gitlab-Token", "")
        expected = settings.GITLAB_WEBHOOK_TOKEN
        if not expected or not hmac.compare_digest(token.encode(), expected.encode()):
            return _refused("The X-Gitlab-Token header is not the configured webhook token.")
        event = GitLabDeploymentEvent(data=request.data)
        event.is_valid(raise_exception=True)
        data = event.validated_data
        if data["object_kind"] != "deployment" or data["status"] != platform_gate.GITLAB_BLOCKED:
            return _ignored(f"a {data['object_kind']} event with status {data['status']}")
        project_id = data["project"]["id"]
        repository = (
            Repository.objects.filter(gitlab_project_id=project_id).exclude(gitlab_url="").first()
        )
        if repository is None:
            return _ignored(f"GitLab project {project_id} is not linked to a repository")
        try:
            answer = platform_gate.gitlab_deployment_review(
                repository=repository, deployment_id=data["deployment_id"], request=request
            )
        except (GitlabError, OSError) as error:
            return _unreachable("GitLab", error)
        if answer is None:
            return _ignored(f"deployment {data['deployment_id']} is no longer blocked")
        return _answered(answer)


def _repository_of(event: dict) -> Repository | None:
    """The Gatehouse repository a GitHub repository is, by its web or clone URL."""
    spelled = {event["html_url"], event.get("clone_url", "")} - {""}
    urls = {normalise_repository_url(url) for url in spelled}
    return Repository.objects.filter(url__in=urls).order_by("pk").first()


class GitHubAppHookView(PlatformHookView):
    @extend_schema(exclude=True)
    def post(self, request: Request) -> Response:
        body = request.body
        if not github.signature_valid(body, request.headers.get("X-Hub-Signature-256", "")):
            return _refused("The X-Hub-Signature-256 header does not sign this body.")
        kind = request.headers.get("X-GitHub-Event", "")
        if kind != "deployment_protection_rule":
            return _ignored(f"a GitHub {kind or 'unnamed'} event")
        try:
            payload = json.loads(body)
        except ValueError as error:
            raise ParseError(f"The body is not JSON: {error}") from error
        event = GitHubProtectionRuleEvent(data=payload)
        event.is_valid(raise_exception=True)
        data = event.validated_data
        if data["action"] != "requested":
            return _ignored(f"a deployment protection rule event with action {data['action']}")
        repository = _repository_of(data["repository"])
        if repository is None:
            return _ignored(f"GitHub repository {data['repository']['full_name']} is not known")
        try:
            answer = platform_gate.github_protection_rule_review(
                repository=repository,
                commit_sha=data["deployment"]["sha"],
                environment=data["environment"],
                callback_url=data["deployment_callback_url"],
                installation_id=data["installation"]["id"],
                request=request,
            )
        except OSError as error:
            return _unreachable("GitHub", error)
        return _answered(answer)
