"""The audit helper keeps changed keys only and never stores a secret's value."""

from __future__ import annotations

import json

import pytest

from portal.services.audit import SECRET_FIELDS, diff

SECRET_NAMES = sorted(SECRET_FIELDS | {"qbo_refresh_token", "smtp_password",
                                       "webhook_verifier_token", "cw_private_key"})


def test_only_changed_keys_are_kept():
    before, after = diff({"role": "viewer", "name": "Ann"}, {"role": "admin", "name": "Ann"})
    assert before == {"role": "viewer"}
    assert after == {"role": "admin"}


def test_creation_keeps_every_key():
    before, after = diff(None, {"email": "a@b.test", "role": "admin"})
    assert before is None
    assert after == {"email": "a@b.test", "role": "admin"}


@pytest.mark.parametrize("field", SECRET_NAMES)
def test_secret_fields_are_masked(field):
    old_value, new_value = "old-Secret-value-123", "new-Secret-value-456"
    before, after = diff({field: old_value}, {field: new_value})
    assert before == {field: {"secret": True, "changed": True}}
    assert after == {field: {"secret": True, "changed": True}}
    stored = json.dumps([before, after])
    assert old_value not in stored and new_value not in stored


def test_unchanged_secret_is_not_logged():
    assert diff({"client_secret": "same"}, {"client_secret": "same"}) == (None, None)
