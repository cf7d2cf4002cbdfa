"""Issue 19: errors say what happened, why, and what the person can do next."""

from datetime import timedelta

import pytest
from django.utils import timezone

from releases.selectors.commits import release_commits
from tests.releases.test_pages import form_data

pytestmark = pytest.mark.django_db


def test_a_missing_mirror_is_a_note_that_says_who_fixes_it(login, requester, filed_change):
    commits = release_commits(
        model_version=filed_change.model_version, environment=filed_change.environment
    )
    body = login(requester).get(f"/releases/change-requests/{filed_change.number}/").content

    assert not commits.known
    assert "An administrator can fix this" in commits.remedy
    assert "fetch_mirrors" in commits.remedy
    page = body.decode()
    assert 'class="banner note" role="note"' in page
    assert "An administrator can fix this: Admin → Repositories" in page
    assert "banner bad" not in page.split("Commits in this release")[1].split("</section>")[0]


def test_a_window_in_the_past_names_it_and_says_what_to_do(login, requester, envs, version):
    start = timezone.now() - timedelta(days=1)
    data = form_data(
        version,
        environment=envs["prod"],
        window_start=start.strftime("%Y-%m-%dT%H:%M"),
        window_end=(start + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
    )

    response = login(requester).post("/releases/change-requests/new/", data)

    errors = " ".join(response.context["form"].non_field_errors())
    assert f"starts in the past ({start:%Y-%m-%d %H:%M} UTC)" in errors
    assert "suggests the next free window" in errors
