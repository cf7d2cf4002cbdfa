"""Issue 19: errors say what happened, why, and what the person can do next."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from portal.exceptions import Conflict, RuleDenied
from releases.builders import file_change, release_to_test, sign
from releases.selectors.commits import release_commits
from releases.services import policy
from releases.services.change_requests import change_request_cancel
from releases.services.gate import gate_evaluate
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


# -- the gate's reasons: each ends with what the requester or the pipeline does next ----------


def when(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M %Z")


def reasons_of(answer) -> dict[str, str]:
    return {reason.code: reason.message for reason in answer.reasons}


def ask(change_request, now):
    return gate_evaluate(
        environment=change_request.environment,
        model=change_request.model_version.model,
        version=change_request.model_version.version,
        change_request=change_request,
        now=now,
    )


def test_a_soak_refusal_names_the_day_it_holds_and_says_to_wait_until_then(
    envs, builds, ci, clock, requester, peer, prod_signers
):
    release_to_test(
        envs, builds["1.0"], ci.account, clock, requester, peer, pause=timedelta(days=3)
    )
    change = file_change(
        model_version=builds["1.0"],
        environment=envs["prod"],
        requester=requester,
        signers=prod_signers,
        window_start=clock.now,
    )

    answer = ask(change, clock.now + timedelta(minutes=10))

    holds = when(answer.soak.earliest_allowed_at)
    assert reasons_of(answer)["soak_not_met"].endswith(
        f"the 7-day soak holds from {holds}. Wait until then, or, for an urgent fix, file an "
        "emergency change."
    )


def test_a_build_never_live_in_test_is_told_to_go_there_first(approved):
    answer = ask(approved, approved.window_start + timedelta(minutes=1))

    assert reasons_of(answer)["soak_not_met"].endswith(
        "prod needs 7 days of it live there first. Deploy it to test; the soak holds 7 days "
        "after it goes live there."
    )


def test_a_pipeline_without_a_change_is_told_to_file_one(envs, version):
    answer = gate_evaluate(environment=envs["prod"], model=version.model, version="1.0.0")

    assert reasons_of(answer)["no_approved_change"] == (
        "prod needs an approved change request for this build, and none was named. File one "
        "on the portal (Change requests → New), and name its number once it is approved."
    )


def test_a_change_still_in_review_says_whom_it_waits_for(filed_change):
    answer = ask(filed_change, filed_change.window_start + timedelta(minutes=1))

    assert reasons_of(answer)["no_approved_change"] == (
        f"{filed_change.number} is in peer review, not approved. It waits for its peer review; "
        "the change's page says who may give it."
    )


def test_outside_its_window_a_change_says_to_wait_or_to_file_anew(approved):
    early = reasons_of(ask(approved, approved.window_start - timedelta(hours=1)))
    late = reasons_of(ask(approved, approved.window_end + timedelta(hours=1)))

    assert early["outside_window"].endswith(f"Wait until {when(approved.window_start)} to deploy.")
    assert late["outside_window"].endswith(
        "Its window has passed: file a new change request with a new window."
    )


def test_a_freeze_says_until_when_and_offers_the_emergency_path(approved):
    start = approved.window_start
    policy.freeze_window_create(
        actor=None,
        environment=approved.environment,
        starts_at=start - timedelta(hours=1),
        ends_at=start + timedelta(hours=6),
        reason="Year-end close",
    )

    answer = ask(approved, start + timedelta(minutes=1))

    assert reasons_of(answer)["freeze_in_effect"] == (
        f"prod is frozen until {when(start + timedelta(hours=6))}: Year-end close. Wait until "
        "the freeze ends, or, for an urgent fix, file an emergency change."
    )


def test_the_change_page_shows_each_gate_reason_with_its_next_step(login, requester, approved):
    page = login(requester).get(f"/releases/change-requests/{approved.number}/").content.decode()

    gate = page.split('aria-label="Deployment gate"')[1].split("</section>")[0]
    assert "<code>soak_not_met</code>" in gate
    assert "Deploy it to test; the soak holds 7 days after it goes live there." in gate


# -- submit, cancel and sign refusals ----------------------------------------------------------


def test_a_refused_submit_names_the_requester_to_ask(login, peer, requester, filed_change):
    response = login(peer).post(
        reverse("releases:change-request-submit", args=[filed_change.number])
    )

    assert response.status_code == 403
    assert (
        f"Only the requester of {filed_change.number}, {requester.get_full_name()}, may do "
        "this: ask them, or file a change of your own."
    ) in response.content.decode()


def test_a_deployed_change_cannot_be_cancelled_and_says_to_roll_back(
    envs, builds, ci, clock, requester, peer
):
    deployed = release_to_test(envs, builds["1.0"], ci.account, clock, requester, peer)

    with pytest.raises(Conflict) as refused:
        change_request_cancel(
            actor=requester, change_request=deployed.change_request, reason="Not needed."
        )

    assert refused.value.code == "invalid_transition"
    assert refused.value.detail == (
        f"{deployed.change_request.number} is deployed; it cannot become cancelled. It has "
        "been deployed: roll it back if it misbehaves, or file a new change."
    )


def test_signing_ones_own_change_says_someone_else_signs_it(requester, filed_change):
    with pytest.raises(RuleDenied) as refused:
        sign(requester, filed_change)

    assert refused.value.code == "own_change"
    assert refused.value.detail == (
        f"{filed_change.number} is your own change, and nobody signs their own: someone else "
        "signs it (the change's page says whom it waits for)."
    )


def test_a_wrong_password_at_signing_says_to_type_it_again(peer, filed_change):
    with pytest.raises(RuleDenied) as refused:
        sign(peer, filed_change, password="not-my-password")

    assert refused.value.code == "reauth_failed"
    assert "Type your sign-in password again" in refused.value.detail


# -- pages that answer an error ----------------------------------------------------------------


def test_the_403_page_shows_the_refusal_and_who_grants_roles(login, peer, filed_change):
    response = login(peer).get(reverse("releases:change-request-edit", args=[filed_change.number]))

    assert response.status_code == 403
    page = response.content.decode()
    assert f"Only the requester of {filed_change.number}" in page
    assert "Nothing was changed. If you think you should be allowed, ask an administrator" in page


def test_the_404_page_names_what_is_missing_and_where_to_look(login, requester, org):
    client = login(requester)

    missing_change = client.get("/releases/change-requests/CR-999/").content.decode()
    unknown_address = client.get("/no-such-page/").content.decode()

    assert (
        "No change request is numbered &#x27;CR-999&#x27;. Numbers look like CR-42; the Change "
        "requests page lists them."
    ) in missing_change
    assert "Nothing is at /no-such-page/." in unknown_address
    assert "look it up with the search box at the top" in unknown_address


def test_a_form_sent_without_its_token_says_nothing_changed_and_to_reload(
    password, requester, filed_change
):
    strict = Client(enforce_csrf_checks=True)
    strict.login(username=requester.username, password=password)

    response = strict.post(
        reverse("releases:change-request-cancel", args=[filed_change.number]),
        {"reason": "Not needed."},
    )

    assert response.status_code == 403
    page = response.content.decode()
    assert "Nothing was changed" in page
    assert "reload the page and send the form again" in page
