"""The layering of README.md's Layout, beyond what `lint-imports` checks in `make lint`: every
portal module has its place in the contract, and templates follow the same order as the code
(a lower app's template neither includes a higher app's template nor loads its tags)."""

import pkgutil
import re
import tomllib
from pathlib import Path

import pytest
from django.conf import settings
from django.template.backends.django import get_installed_libraries

import portal

PYPROJECT = Path(settings.BASE_DIR) / "pyproject.toml"
TEMPLATES = Path(settings.BASE_DIR) / "templates"
REFERENCE = re.compile(r"{%\s*(include|extends)\s+[\"']([^\"']+)[\"']|{%\s*load\s+(.+?)\s*%}")


def contract_layers() -> list[list[str]]:
    """The modules of each layer of the contract, top first."""
    [contract] = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]["contracts"]
    return [[name.strip() for name in re.split("[:|]", layer)] for layer in contract["layers"]]


def app_ranks() -> dict[str, int]:
    """Each app by its lowest layer, bottom first: portal 0, audit 1, ... releases highest."""
    ranks: dict[str, int] = {}
    for layer in reversed(contract_layers()):
        for module in layer:
            ranks.setdefault(module.split(".")[0], len(ranks))
    return ranks


def upward_references(app: str, text: str) -> list[str]:
    """What a template of `app` includes, extends or loads from a higher app."""
    ranks = app_ranks()
    libraries = get_installed_libraries()
    references = []  # (what, the app it belongs to)
    for kind, name, loaded in REFERENCE.findall(text):
        if loaded:
            references += [
                (f"load {library}", libraries.get(library, "").split(".")[0])
                for library in loaded.split()
            ]
        elif "/" in name:
            references.append((f"{kind} {name}", name.split("/")[0]))
        elif kind == "include":  # the site's own templates; base.html is there to be extended
            references.append((f"{kind} {name}", "site"))
    return [
        what for what, owner in references if owner == "site" or ranks.get(owner, -1) > ranks[app]
    ]


def test_every_portal_module_is_in_a_layer():
    placed = {module for layer in contract_layers() for module in layer}
    children = {f"portal.{child.name}" for child in pkgutil.iter_modules(portal.__path__)}
    assert children - placed == set()


@pytest.mark.parametrize(
    "template",
    [
        path
        for path in sorted(TEMPLATES.rglob("*.html"))
        if path.relative_to(TEMPLATES).parts[0] in app_ranks()
    ],
    ids=lambda path: str(path.relative_to(TEMPLATES)),
)
def test_templates_use_nothing_of_a_higher_app(template):
    app = template.relative_to(TEMPLATES).parts[0]
    assert upward_references(app, template.read_text()) == []


def test_the_template_check_sees_an_include_or_a_tag_library_of_a_higher_app():
    text = '{% extends "base.html" %}{% load gatehouse_time delivery_metrics %}'
    text += '{% include "portal/notifications.html" %}{% include "releases/attention_panel.html" %}'
    text += '{% include "nav_apps.html" %}'
    assert upward_references("portal", text) == [
        "load delivery_metrics",
        "include releases/attention_panel.html",
        "include nav_apps.html",
    ]
    assert upward_references("releases", text) == ["include nav_apps.html"]
