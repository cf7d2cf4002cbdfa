"""Input and output shapes of the webhooks API. A subscription's URL is shown by its scheme and
host only, and its signing secret only in the answer that made it."""

import re

from django.conf import settings
from rest_framework import serializers

from integrations.models import WebhookEventType, WebhookKind, WebhookSubscription
from portal.serializers import NoUnknownFields
from portal.validators import SingleLine, WholeMatch

HOST_LABEL = "[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
HTTPS_URL = (
    rf"^https://{HOST_LABEL}(?:\.{HOST_LABEL})*\.[a-z]{{2,63}}(?::[0-9]{{1,5}})?(?:[/?#][!-~]*)?$"
)
LOCAL_HTTP_URL = re.compile(r"http://(?:localhost|127\.0\.0\.1)(?::[0-9]{1,5})?(?:[/?#][!-~]*)?")


class WebhookUrl(WholeMatch):
    """The https URLs the schema states; plain http to this machine too where
    GATEHOUSE_WEBHOOKS_ALLOW_LOCAL_HTTP is on (a local relay, the tests), an opt-in the schema
    leaves out. integrations.webhooks.url_check then checks the rest."""

    def __call__(self, value):
        if settings.WEBHOOK_ALLOW_LOCAL_HTTP and LOCAL_HTTP_URL.fullmatch(str(value)):
            return
        super().__call__(value)


class WebhookInput(NoUnknownFields):
    name = serializers.CharField(max_length=100, validators=[SingleLine()])
    kind = serializers.ChoiceField(WebhookKind.choices)
    url = serializers.CharField(
        max_length=2000,
        trim_whitespace=False,
        validators=[WebhookUrl(HTTPS_URL, "Enter a full https:// URL.")],
        help_text="https://… (the incoming webhook of a Teams or Slack channel, or a Standard "
        "Webhooks receiver). Stored encrypted; never shown again in full.",
    )
    event_types = serializers.ListField(
        child=serializers.ChoiceField(WebhookEventType.choices), min_length=1, max_length=50
    )
    environments = serializers.ListField(
        child=serializers.SlugField(max_length=50),
        required=False,
        default=list,
        max_length=50,
        help_text="Environment names; empty for all.",
    )
    team = serializers.SlugField(
        max_length=100,
        required=False,
        allow_blank=True,
        default="",
        help_text="The team whose tokens may manage it. A token's own team by default; "
        "administrators may leave it empty.",
    )


class WebhookOutput(serializers.ModelSerializer):
    url = serializers.CharField(source="url_hint", help_text="Scheme and host only.")
    team = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)

    class Meta:
        model = WebhookSubscription
        fields = [
            "id",
            "name",
            "kind",
            "url",
            "event_types",
            "environments",
            "team",
            "is_active",
            "created_by_name",
            "created_at",
            "secret_rotated_at",
        ]


class WebhookCreated(WebhookOutput):
    secret = serializers.CharField(
        allow_null=True,
        help_text="The signing secret (`whsec_…`) of a Standard Webhooks subscription: shown "
        "here once, never again. Null for Teams and Slack.",
    )

    class Meta(WebhookOutput.Meta):
        fields = [*WebhookOutput.Meta.fields, "secret"]


class WebhookSecret(serializers.Serializer):
    secret = serializers.CharField(help_text="The new signing secret: shown once.")
    previous_secret_signs_until = serializers.DateTimeField()
