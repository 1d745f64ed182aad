"""Log lines never carry tokens, keys or passwords."""

from __future__ import annotations

import json
import logging

from portal import logs


def test_redact_headers_tokens_and_known_values():
    logs.remember_secret("the-private-key-value")
    text = logs.redact("Authorization: Bearer eyJhbGciOi.abc access_token=abc123&x=1 "
                       '{"refresh_token": "RT-987"} client_secret=shh password: hunter2hunter2 '
                       "key=the-private-key-value")
    for secret in ("eyJhbGciOi", "abc123", "RT-987", "shh", "hunter2hunter2",
                   "the-private-key-value"):
        assert secret not in text
    assert text.count(logs.REDACTED) == 6
    assert "x=1" in text


def test_json_formatter_and_filter():
    record = logging.LogRecord("portal.test", logging.WARNING, __file__, 1,
                               "refresh failed for run=%s refresh_token=%s", (7, "RT-secret"),
                               None)
    logs.RedactingFilter().filter(record)
    entry = json.loads(logs.JsonFormatter().format(record))
    assert entry["level"] == "warning" and entry["logger"] == "portal.test"
    assert entry["message"] == f"refresh failed for run=7 refresh_token={logs.REDACTED}"
