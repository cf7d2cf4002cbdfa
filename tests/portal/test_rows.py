"""`portal.rows`: the hot paths' SQL put together once writes and reads the rows the ORM would
(JSON, times, booleans and defaults filled in by fields), on PostgreSQL and SQLite alike."""

import pytest
from django.utils import timezone

from portal.authentication import token_with_account
from portal.models import Notification, ServiceToken
from portal.rows import row_insert
from releases.models import GateDecision, GatePurpose

pytestmark = pytest.mark.django_db


def test_an_inserted_row_reads_back_as_saved(envs, requester):
    decided_at = timezone.now()
    decision = row_insert(
        GateDecision(
            purpose=GatePurpose.CHECK,
            environment=envs["prod"],
            allowed=False,
            reasons=[{"code": "soak_not_met", "message": "Not yet — «soak» 7 days."}],
            question={"model": "fraud-score", "version": "1.0"},
            asked_by_name="ci-pipeline",
            decided_at=decided_at,
        )
    )
    assert decision.pk is not None and not decision._state.adding
    stored = GateDecision.objects.get(pk=decision.pk)
    assert stored.environment == envs["prod"] and stored.allowed is False
    assert stored.reasons == decision.reasons and stored.question == decision.question
    assert stored.warnings == [] and stored.deployment is None
    assert stored.decided_at == decided_at

    # A field's own default on insert (auto_now_add) is filled in as save() fills it.
    note = row_insert(Notification(recipient=requester, key="k", subject="s", body="b", reason="r"))
    assert Notification.objects.get(pk=note.pk).created_at == note.created_at is not None


def test_a_token_is_read_with_its_account_and_team_as_the_orm_reads_it(ci):
    prefix = ci.secret.split("_")[1]
    expected = ServiceToken.objects.select_related("service_account__team").get(prefix=prefix)
    token = token_with_account(prefix)
    for field in ServiceToken._meta.concrete_fields:
        assert getattr(token, field.attname) == getattr(expected, field.attname), field.name
    account = token.service_account
    assert account.scopes == expected.service_account.scopes and account.is_active is True
    assert account.created_at == expected.service_account.created_at
    assert account.team == expected.service_account.team
    assert account.team.slug == expected.service_account.team.slug
    assert token_with_account("nosuchprefix") is None
