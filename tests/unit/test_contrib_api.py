"""The integration modules' public surface: ``__all__`` complete and documented."""

from __future__ import annotations

import importlib
import inspect

import pytest

MODULES = ["durable.contrib.fastapi", "durable.contrib.webhooks", "durable.testing_plugin"]


@pytest.mark.parametrize("module_name", MODULES)
def test_every_public_name_exists_and_is_documented(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert module.__doc__
    for name in module.__all__:
        value = getattr(module, name)
        if inspect.isfunction(value) or inspect.isclass(value):
            assert inspect.getdoc(value), f"{module_name}.{name} has no docstring"


def test_secrets_never_show_in_a_verifier_repr() -> None:
    from durable.contrib.webhooks import WebhookVerifier

    secret = "whsec_c2VjcmV0LXZhbHVlLXRoYXQtbXVzdC1ub3Qtc2hvdw=="
    shown = repr(WebhookVerifier(secret)) + str(WebhookVerifier(secret))
    assert "c2VjcmV0" not in shown
