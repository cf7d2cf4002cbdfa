"""The organisation part of the demo: four teams and the personas of the product."""

from django.contrib.auth import get_user_model

from organisation import services
from portal.models import Team

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
    users = get_user_model().objects
    logins = []
    for username, full_name, slug, approver, emergency, staff in PERSONAS:
        first, _, last = full_name.partition(" ")
        user, created = users.get_or_create(
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
