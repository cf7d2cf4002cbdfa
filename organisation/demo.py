"""The organisation part of the demo: four teams and the personas of the product, and an
approver away with a delegate."""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone

from organisation import services
from portal.models import Absence, Team

DEMO_PASSWORD = "gatehouse-demo"  # noqa: S105  # nosec B105 - the published demo login

TEAMS = [
    ("Data Science", "data-science", "Builds and trains the models."),
    ("Model Risk", "model-risk", "Independent validation of models and their risk."),
    ("Release Management", "release-management", "Owns the change calendar and releases."),
    ("Platform Operations", "platform-operations", "Runs the serving platform."),
]

# username, full name, team slug, approver, emergency approver, staff
PERSONAS = [
    ("requester", "Rhea Quinn", "data-science", False, False, False),
    ("peer", "Per Eriksen", "data-science", False, False, False),
    ("risk", "Rita Kovacs", "model-risk", True, False, False),
    ("release", "Rel Martins", "release-management", True, False, False),
    ("platform", "Pat Okafor", "platform-operations", True, False, False),
    ("changemgr", "Chandra Mehta", "release-management", False, True, False),
    ("auditor", "Aude Laurent", "", False, False, False),
    ("admin", "Ada Admin", "", False, False, True),
]


def seed_organisation() -> list[tuple[str, str, str]]:
    """Create what is missing; leave what exists. Returns (username, full name, roles) rows."""
    teams = {}
    for name, slug, description in TEAMS:
        team = Team.objects.filter(slug=slug).first()
        teams[slug] = team or services.team_create(
            actor=None, name=name, slug=slug, description=description
        )
    logins = []
    for username, full_name, slug, approver, emergency, staff in PERSONAS:
        user = _login(username, full_name, staff=staff)
        roles = "administrator" if staff else ""
        if slug:
            membership = services.membership_set(
                actor=None,
                user=user,
                team=teams[slug],
                is_approver=approver,
                is_emergency_approver=emergency,
            )
            roles = f"{teams[slug].name}: {', '.join(membership.role_labels)}"
        elif username == "auditor":
            roles = "auditor (reads the audit trail)"
        logins.append((username, full_name, roles))
    return logins


def _login(username: str, full_name: str, *, staff: bool = False):
    """The demo user called `username`, made with the demo password if missing."""
    first, _, last = full_name.partition(" ")
    user, created = get_user_model().objects.get_or_create(
        username=username,
        defaults={
            "first_name": first,
            "last_name": last,
            "email": f"{username}@gatehouse.example",
            "is_staff": staff,
            "is_superuser": staff,
        },
    )
    if created:
        user.set_password(DEMO_PASSWORD)
        user.save(update_fields=["password"])
    return user


# Rita Kovacs is on holiday; Milan Novak, the other Model Risk approver, signs as her delegate.
DELEGATE = ("riskdeputy", "Milan Novak")
AWAY_DAYS = 10


def seed(stdout) -> None:
    """An approver away with a delegate (issue 17): `risk` is away from today for ten days, and
    `riskdeputy`, another approver of Model Risk, finds her team's approvals waiting for him as
    her delegate. Recorded again only when no absence of hers is in force or to come."""
    team = Team.objects.filter(slug="model-risk").first()
    away = get_user_model().objects.filter(username="risk").first()
    if team is None or away is None:
        return
    username, full_name = DELEGATE
    deputy = _login(username, full_name)
    services.membership_set(actor=None, user=deputy, team=team, is_approver=True)
    today = timezone.localdate()
    absence = Absence.objects.filter(
        person=away, team=team, cancelled_at__isnull=True, ends_on__gte=today
    ).first() or services.absence_set(
        actor=None,
        person=away,
        team=team,
        delegate=deputy,
        starts_on=today,
        ends_on=today + timedelta(days=AWAY_DAYS),
    )
    stdout.write(
        f"Organisation: {away.get_full_name()} (risk) is away until {absence.ends_on:%Y-%m-%d}; "
        f"{deputy.get_full_name()} ({username}) signs for {team.name} as her delegate."
    )
