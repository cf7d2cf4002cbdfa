from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from organisation.oidc import ProviderSignIn, ProviderSignInReturn
from portal import health, metrics, views

api_v1 = [
    path("", include("portal.api.urls")),
    path("", include("audit.api.urls")),
    path("", include("registry.api.urls")),
    path("", include("releases.api.urls")),
    path("", include("integrations.api.urls")),
]

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("notifications/", views.notification_list, name="notifications"),
    path("profile/", views.profile, name="profile"),
    path("profile/sign-out-everywhere/", views.sign_out_everywhere, name="sign-out-everywhere"),
    path("notifications/read/", views.notifications_read, name="notifications-read"),
    path("absences/", include("organisation.urls")),
    path("login/", views.SignInView.as_view(), name="login"),
    # Single sign-on (organisation/oidc.py); answers 404 unless OIDC_ISSUER is set.
    path("oidc/authenticate/", ProviderSignIn.as_view(), name="oidc_authentication_init"),
    path("oidc/callback/", ProviderSignInReturn.as_view(), name="oidc_authentication_callback"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.MetricsView.as_view(), name="metrics"),
    path("admin/", admin.site.urls),
    path("audit/", include("audit.urls")),
    path("registry/", include("registry.urls")),
    path("releases/", include("releases.urls")),
    path("integrations/", include("integrations.urls")),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
]

handler404 = "portal.views.not_found"
handler500 = "portal.views.server_error"
