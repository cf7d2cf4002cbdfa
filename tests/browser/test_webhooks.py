"""A Teams channel told that a change waits for a team: the card reaches the channel's incoming
webhook (a stand-in on this machine), and its button opens the change in the browser."""

import pytest
from playwright.sync_api import expect

from integrations.webhook_delivery import (
    deliveries_due,
    webhook_delivery_attempt,
    webhooks_fan_out,
)
from integrations.webhooks import webhook_subscription_create
from releases.builders import sign
from tests.conftest import TRANSACTIONAL_APPS
from tests.integrations.webhook_receiver import start_receiver

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, available_apps=TRANSACTIONAL_APPS),
]


@pytest.fixture
def teams_channel():
    receiver = start_receiver()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


def test_the_teams_card_of_a_change_waiting_for_a_team_opens_that_change(
    page,
    sign_in,
    live_server,
    settings,
    teams_channel,
    administrator,
    peer,
    model_risk_approver,
    new_change,
):
    settings.PORTAL_BASE_URL = live_server.url
    webhook_subscription_create(
        actor=administrator,
        name="Model Risk channel",
        kind="teams",
        url=teams_channel.url,
        event_types=["change_request.waiting"],
        environments=["prod"],
    )
    change = new_change()
    sign(peer, change)

    webhooks_fan_out()
    for delivery_id in deliveries_due():
        webhook_delivery_attempt(delivery_id=delivery_id)

    submitted, signed = (post.json() for post in teams_channel.received)
    card = signed["attachments"][0]["content"]
    assert card["body"][0]["text"] == (
        f"{change.number} fraud-detector 1.0.0 to prod: Per Eriksen signed as peer reviewer; it "
        "waits for Model Risk, Platform Operations and Release Management"
    )
    [button] = card["actions"]
    assert button["title"] == "Sign"
    # Told a moment later, the submission says where the change is by then.
    assert submitted["attachments"][0]["content"]["body"][0]["text"] == (
        f"{change.number} fraud-detector 1.0.0 to prod was submitted by Rhea Quinn; it now "
        "waits for Model Risk, Platform Operations and Release Management"
    )

    sign_in(model_risk_approver)
    page.goto(button["url"])
    expect(page.locator("h1")).to_contain_text(change.number)
    expect(page.get_by_role("link", name="Review and sign")).to_be_visible()
