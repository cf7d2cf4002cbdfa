"""Extension points for apps that build on the audit trail (which never imports them).

An auditor types what they know, `CR-22`, a model's name, a deployment id or a commit SHA, and
means "every event about that thing and what it stands for". Which objects a change request or a
model stands for is `releases`' and `registry`'s knowledge, so the audit pages ask the resolvers
registered here. A resolver takes the typed text and returns an `About`, or None when the text is
not one of its things. Register it from the other app's `AppConfig.ready()`::

    from audit import hooks

    class ReleasesConfig(AppConfig):
        def ready(self):
            hooks.register_about_resolver(change_request_subjects)
"""

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class About:
    """What the text named, in words (`CR-22, its build and 2 deployments`), and the audit
    objects that stand for it: `{object_type: {object_id, …}}`."""

    label: str
    subjects: dict[str, set[str]] = field(default_factory=dict)


AboutResolver = Callable[[str], About | None]

about_resolvers: list[AboutResolver] = []
model_resolvers: list[AboutResolver] = []


def register_about_resolver(resolver: AboutResolver) -> None:
    if resolver not in about_resolvers:
        about_resolvers.append(resolver)


def register_model_resolver(resolver: AboutResolver) -> None:
    """A resolver that takes a model's name and returns the model with everything of it."""
    if resolver not in model_resolvers:
        model_resolvers.append(resolver)


def _first(resolvers: list[AboutResolver], text: str) -> About | None:
    text = text.strip()
    if not text:
        return None
    for resolver in resolvers:
        about = resolver(text)
        if about is not None:
            return about
    return None


def resolve_about(text: str) -> About | None:
    """The first registered resolver's answer for `text`, or None when nobody knows it."""
    return _first(about_resolvers, text)


def resolve_model(name: str) -> About | None:
    return _first(model_resolvers, name)
