"""Reconciliation of who may do what (rule 17): memberships, absences and service accounts
replayed from the events `organisation.services` writes, compared with their rows. An approver
role granted by SQL, a delegate named or an absence stretched behind the trail's back, a service
account given a scope or switched back on, is reported by object and field.
`releases.reconciliation` runs this with its own replay and keeps the findings."""

from audit.actions import AuditAction
from audit.replay import Discrepancy, Expected, TrailEvent, compare
from portal.models import Absence, Membership, ServiceAccount

MEMBERSHIP = Membership._meta.label_lower
ABSENCE = Absence._meta.label_lower
SERVICE_ACCOUNT = ServiceAccount._meta.label_lower
ACTIONS = frozenset(
    {
        AuditAction.MEMBERSHIP_CHANGED,
        AuditAction.MEMBERSHIP_REMOVED,
        AuditAction.ABSENCE_SET,
        AuditAction.ABSENCE_CANCELLED,
        AuditAction.SERVICE_ACCOUNT_CREATED,
        AuditAction.SERVICE_ACCOUNT_UPDATED,
    }
)


class OrganisationReplay:
    """Feed it the trail's events in order; `discrepancies()` then reads the rows."""

    actions = ACTIONS

    def __init__(self) -> None:
        self.memberships: dict[str, Expected] = {}
        self.absences: dict[str, Expected] = {}
        self.service_accounts: dict[str, Expected] = {}

    def apply(self, event: TrailEvent) -> None:
        data = event.data
        if event.action == AuditAction.MEMBERSHIP_CHANGED:
            expected = self.memberships.setdefault(event.object_id, Expected())
            expected.exists = True
            expected.set(event, user=data["user"], team=data["team"], roles=data["roles_after"])
        elif event.action == AuditAction.MEMBERSHIP_REMOVED:
            expected = self.memberships.setdefault(event.object_id, Expected())
            expected.exists = False
            expected.seq = event.seq
        elif event.action == AuditAction.ABSENCE_SET:
            self.absences.setdefault(event.object_id, Expected()).set(
                event,
                person=str(data["person"]["id"]),
                team=data["team"],
                delegate=str(data["delegate"]["id"]),
                starts_on=data["starts_on"],
                ends_on=data["ends_on"],
                cancelled=False,
            )
        elif event.action == AuditAction.ABSENCE_CANCELLED:
            self.absences.setdefault(event.object_id, Expected()).set(event, cancelled=True)
        elif event.action == AuditAction.SERVICE_ACCOUNT_CREATED:
            self.service_accounts.setdefault(event.object_id, Expected()).set(
                event, name=data["name"], team=data["team"], scopes=data["scopes"], is_active=True
            )
        elif event.action == AuditAction.SERVICE_ACCOUNT_UPDATED:
            self.service_accounts.setdefault(event.object_id, Expected()).set(
                event, scopes=data["after"]["scopes"], is_active=data["after"]["is_active"]
            )

    def discrepancies(self) -> list[Discrepancy]:
        memberships = (
            (
                str(m.pk),
                {"user": m.user.get_username(), "team": m.team.slug, "roles": m.roles},
            )
            for m in Membership.objects.select_related("user", "team").iterator(chunk_size=2000)
        )
        accounts = (
            (
                str(a.pk),
                {
                    "name": a.name,
                    "team": a.team.slug,
                    "scopes": sorted(a.scopes),
                    "is_active": a.is_active,
                },
            )
            for a in ServiceAccount.objects.select_related("team").iterator(chunk_size=2000)
        )
        absences = (
            (
                str(a.pk),
                {
                    "person": str(a.person_id),
                    "team": a.team.slug,
                    "delegate": str(a.delegate_id),
                    "starts_on": a.starts_on.isoformat(),
                    "ends_on": a.ends_on.isoformat(),
                    "cancelled": a.cancelled_at is not None,
                },
            )
            for a in Absence.objects.select_related("team").iterator(chunk_size=2000)
        )
        # A membership gone without its event takes rights away (deleting a user removes
        # theirs); a row the trail does not explain is what grants them.
        return [
            *compare(
                object_type=MEMBERSHIP,
                expected=self.memberships,
                rows=memberships,
                missing_rows_matter=False,
            ),
            *compare(object_type=ABSENCE, expected=self.absences, rows=absences),
            *compare(object_type=SERVICE_ACCOUNT, expected=self.service_accounts, rows=accounts),
        ]
