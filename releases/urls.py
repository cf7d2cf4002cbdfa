from django.urls import path

from releases.views import (
    calendar,
    change_requests,
    environments,
    metrics,
    search,
    standard_changes,
)

app_name = "releases"

urlpatterns: list = [
    # Change requests, sign-offs, freezes, emergencies (releases/views/change_requests.py)
    path("waiting/", change_requests.waiting, name="waiting"),
    path("change-requests/", change_requests.change_request_list, name="change-requests"),
    path("change-requests/new/", change_requests.change_request_new, name="change-request-new"),
    path(
        "change-requests/<str:number>/",
        change_requests.change_request_detail,
        name="change-request",
    ),
    path(
        "change-requests/<str:number>/evidence.zip",
        change_requests.change_request_evidence,
        name="change-request-evidence",
    ),
    path(
        "change-requests/<str:number>/edit/",
        change_requests.change_request_edit,
        name="change-request-edit",
    ),
    path(
        "change-requests/<str:number>/submit/",
        change_requests.change_request_submit,
        name="change-request-submit",
    ),
    path(
        "change-requests/<str:number>/cancel/",
        change_requests.change_request_cancel,
        name="change-request-cancel",
    ),
    path(
        "change-requests/<str:number>/sign-offs/<int:pk>/withdraw/",
        change_requests.sign_off_withdraw,
        name="sign-off-withdraw",
    ),
    path(
        "change-requests/<str:number>/sign/",
        change_requests.change_request_sign,
        name="change-request-sign",
    ),
    # Where the identity provider sends a signer back (register it there as a redirect URI).
    path(
        "signature/returned/",
        change_requests.signature_returned,
        name="signature-returned",
    ),
    path("freezes/", change_requests.freeze_list, name="freezes"),
    path("emergencies/", change_requests.emergency_list, name="emergencies"),
    path("emergencies/new/", change_requests.emergency_new, name="emergency-new"),
    # Environments, live and as-of views, deployments, rollback (releases/views/environments.py)
    path("environments/", environments.environment_list, name="environments"),
    path("environments/<str:name>/", environments.environment_detail, name="environment"),
    path(
        "environments/<str:name>/models/<str:model>/rollback/",
        environments.environment_rollback,
        name="environment-rollback",
    ),
    path(
        "unauthorised-changes/<int:pk>/review/",
        environments.unauthorised_change_review,
        name="unauthorised-change-review",
    ),
    path("deployments/<int:pk>/", environments.deployment_detail, name="deployment"),
    # The search box (releases/views/search.py)
    path("search/", search.search_page, name="search"),
    # Delivery metrics and the live-version timeline (releases/views/metrics.py)
    path("metrics/", metrics.delivery_metrics, name="metrics"),
    # The change calendar, its feeds and the CAB's agenda (releases/views/calendar.py)
    path("calendar/", calendar.calendar, name="calendar"),
    path("calendar/feeds/", calendar.calendar_feeds, name="calendar-feeds"),
    path("calendar/feeds/issue/", calendar.calendar_feed_issue, name="calendar-feed-issue"),
    path(
        "calendar/feeds/<int:pk>/revoke/",
        calendar.calendar_feed_revoke,
        name="calendar-feed-revoke",
    ),
    path("calendar/feeds/<str:token>.ics", calendar.calendar_feed, name="calendar-feed"),
    path("cab/", calendar.cab, name="cab"),
    # Standard change templates and their changes (releases/views/standard_changes.py)
    path(
        "standard-templates/",
        standard_changes.standard_template_list,
        name="standard-templates",
    ),
    path(
        "standard-templates/new/",
        standard_changes.standard_template_new,
        name="standard-template-new",
    ),
    path(
        "standard-templates/<int:pk>/",
        standard_changes.standard_template_detail,
        name="standard-template",
    ),
    path(
        "standard-templates/<int:pk>/revoke/",
        standard_changes.standard_template_revoke,
        name="standard-template-revoke",
    ),
    path(
        "standard-templates/<int:pk>/changes/new/",
        standard_changes.standard_change_new,
        name="standard-change-new",
    ),
]
