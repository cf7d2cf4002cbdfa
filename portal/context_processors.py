from portal.authentication import is_service_account
from portal.models import Notification


def unread_notifications(request):
    user = getattr(request, "user", None)
    # A token on an HTML page (Swagger UI opened with one) is a service account: no inbox.
    if user is None or not user.is_authenticated or is_service_account(user):
        return {}
    return {
        "unread_notifications": Notification.objects.filter(
            recipient=user, read_at__isnull=True
        ).count()
    }


def session_ends_at(request):
    """When the person's session ends if they do nothing (the idle timeout), for the top bar."""
    user = getattr(request, "user", None)
    session = getattr(request, "session", None)
    if user is None or session is None or not user.is_authenticated or is_service_account(user):
        return {}
    return {"session_ends_at": session.get_expiry_date()}
