"""With the guard switched off by a superuser, every rewrite is still found: by the hash chain
at the exact event, or, when every later hash was recomputed, by a signed checkpoint."""

import json

import pytest
from django.core.management import call_command

from audit.actions import AuditAction
from audit.chain import event_hash, format_timestamp
from audit.models import AuditEvent, AuditVerification
from audit.services import audit_checkpoint_create, audit_verify
from audit.verification import verify_chain

pytestmark = pytest.mark.django_db


@pytest.fixture
def trail(record_events):
    """Five events, a checkpoint over them, and three more after it."""
    events = record_events(5)
    checkpoint = audit_checkpoint_create(actor=None)
    return events + record_events(3), checkpoint


def _verify_command() -> tuple[int, list[str]]:
    from io import StringIO

    out = StringIO()
    try:
        call_command("audit_verify", stdout=out)
        status = 0
    except SystemExit as exit_:
        status = exit_.code
    return status, out.getvalue().strip().splitlines()


def test_an_intact_trail_verifies(trail):
    report = verify_chain()
    assert report.ok, report.problem
    assert report.checkpoints >= 1
    status, lines = _verify_command()
    assert status == 0
    assert "intact" in lines[0]
    assert "events per second" in lines[-1]


def test_an_edited_event_is_found_at_its_sequence_number(trail, tamper):
    victim = trail[0][2]
    body = json.loads(victim.body)
    body["data"]["number"] = 99
    with tamper() as cursor:
        cursor.execute(
            "UPDATE audit_auditevent SET body = %s WHERE seq = %s",
            [json.dumps(body, separators=(",", ":"), sort_keys=True), victim.seq],
        )
    report = verify_chain()
    assert not report.ok
    assert report.first_bad_seq == victim.seq
    status, lines = _verify_command()
    assert status == 1
    assert lines[-1] == f"first bad event: {victim.seq}"
    assert AuditVerification.objects.latest().first_bad_seq == victim.seq


def test_a_deleted_middle_event_is_found_at_its_sequence_number(trail, tamper):
    victim = trail[0][3]
    with tamper() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE seq = %s", [victim.seq])
    report = verify_chain()
    assert not report.ok
    assert report.first_bad_seq == victim.seq
    assert "missing" in report.problem
    status, lines = _verify_command()
    assert status == 1
    assert lines[-1] == f"first bad event: {victim.seq}"


def test_an_edited_queryable_column_is_found(trail, make_columns_plain):
    victim = trail[0][1]
    with make_columns_plain() as cursor:
        cursor.execute(
            "UPDATE audit_auditevent SET actor_name = 'someone-else' WHERE seq = %s", [victim.seq]
        )
    report = verify_chain()
    assert report.first_bad_seq == victim.seq
    assert "actor_name" in report.problem


def test_a_rewrite_with_every_later_hash_recomputed_is_caught_by_the_checkpoint(trail, tamper):
    events, checkpoint = trail
    victim = events[1]
    rows = list(
        AuditEvent.objects.filter(seq__gte=victim.seq)
        .order_by("seq")
        .values_list("seq", "occurred_at", "body", "prev_hash")
    )
    prev_hash = rows[0][3]
    with tamper() as cursor:
        for seq, occurred_at, body, _old_prev in rows:
            if seq == victim.seq:
                # The queryable `data` follows the body: the database generates it.
                body = body.replace('"number":1', '"number":100')
            new_hash = event_hash(prev_hash, seq, format_timestamp(occurred_at), body)
            cursor.execute(
                "UPDATE audit_auditevent SET body = %s, prev_hash = %s, hash = %s WHERE seq = %s",
                [body, prev_hash, new_hash, seq],
            )
            prev_hash = new_hash
    assert AuditEvent.objects.get(seq=victim.seq).data["number"] == 100
    report = verify_chain()
    assert not report.ok
    assert f"checkpoint #{checkpoint.pk}" in report.problem
    assert report.first_bad_seq <= victim.seq <= checkpoint.size
    status, lines = _verify_command()
    assert status == 1
    assert lines[-1] == f"first bad event: {report.first_bad_seq}"


def test_a_deleted_tail_is_caught_by_the_checkpoint(record_events, tamper):
    events = record_events(3)
    audit_checkpoint_create(actor=None)
    with tamper() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE seq >= %s", [events[1].seq])
    report = verify_chain()
    assert not report.ok
    assert report.first_bad_seq == events[1].seq
    assert "deleted" in report.problem


def test_a_forged_checkpoint_signature_is_found(trail, tamper):
    _events, checkpoint = trail
    with tamper() as cursor:
        cursor.execute(
            "UPDATE audit_auditcheckpoint SET signature = %s WHERE id = %s",
            ["00" * 64, checkpoint.pk],
        )
    report = verify_chain()
    assert not report.ok
    assert "invalid signature" in report.problem


def test_no_checkpoint_is_signed_over_a_broken_trail(trail, tamper):
    victim = trail[0][6]
    with tamper() as cursor:
        cursor.execute("UPDATE audit_auditevent SET body = '{}' WHERE seq = %s", [victim.seq])
    from portal.exceptions import Conflict

    with pytest.raises(Conflict) as caught:
        audit_checkpoint_create(actor=None)
    assert caught.value.code == "chain_broken"
    run, _report = audit_verify(actor=None)
    assert not run.ok and run.first_bad_seq == victim.seq


def test_awkward_text_verifies_and_its_copies_are_still_checked(record_events, make_columns_plain):
    from django.db import transaction

    from audit.services import audit_record

    with transaction.atomic():
        event = audit_record(
            actor=None,
            action=AuditAction.GATE_CHECKED,
            environment='tab\there\nnew"line\\',
            data={"float": 1.5, "big": 2**40, "text": 'q"b\\s\t\u0001 ünï ✓ 𝄞', "list": [None]},
        )
    report = verify_chain()
    assert report.ok, report.problem
    assert AuditEvent.objects.get(seq=event.seq).environment == 'tab\there\nnew"line\\'
    with make_columns_plain() as cursor:
        cursor.execute(
            "UPDATE audit_auditevent SET environment = %s WHERE seq = %s",
            ['tab\there\nnew"line\\!', event.seq],
        )
    report = verify_chain()
    assert report.first_bad_seq == event.seq
    assert "environment" in report.problem
