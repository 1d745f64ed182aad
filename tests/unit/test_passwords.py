"""The password policy and the Argon2id hasher."""

from __future__ import annotations

from portal.services import passwords


def test_length_limits():
    assert passwords.problems("short") == [
        "Use at least 12 characters (this one has 5)."]
    assert passwords.problems("x" * 129)[0] == "Use at most 128 characters."
    assert passwords.problems("a long enough passphrase") == []


def test_common_passwords_are_refused_case_insensitively():
    assert len(passwords.common_passwords()) == 10_000
    assert "123qweasdzxc" in passwords.common_passwords()
    assert "This is one of the most common passwords; choose another." in \
        passwords.problems("123QWEasdzxc")


def test_email_and_its_local_part_are_refused():
    assert passwords.problems("maria.gomez.cpa", "Maria.Gomez.CPA@example.com") == [
        "The password must not be your email address or its first part."]
    assert passwords.problems("maria@example.com", "maria@example.com")


def test_hasher_uses_argon2id_and_verifies():
    hasher = passwords.Hasher(time_cost=1, memory_kib=8, parallelism=1)
    hashed = hasher.hash("a long enough passphrase")
    assert hashed.startswith("$argon2id$")
    assert hasher.verify(hashed, "a long enough passphrase")
    assert not hasher.verify(hashed, "a long enough passphrasE")
    assert not hasher.verify("not-a-hash", "anything")


def test_changed_parameters_ask_for_a_rehash():
    weak = passwords.Hasher(time_cost=1, memory_kib=8, parallelism=1)
    strong = passwords.Hasher(time_cost=2, memory_kib=16, parallelism=1)
    assert strong.needs_rehash(weak.hash("a long enough passphrase"))
    assert passwords.Hasher().hash("a long enough passphrase").startswith(
        "$argon2id$v=19$m=65536,t=3,p=4$")
