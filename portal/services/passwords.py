"""Password policy and Argon2id hashing."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 12
MAX_LENGTH = 128


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    text = resources.files("portal").joinpath("data/common-passwords.txt").read_text("utf-8")
    return frozenset(line.strip().lower() for line in text.splitlines()
                     if line.strip() and not line.startswith("#"))


def problems(password: str, email: str = "") -> list[str]:
    """Why a new password is refused; empty when it is acceptable.

    Length and a blocklist only: composition rules push people to predictable patterns.
    """
    found: list[str] = []
    if len(password) < MIN_LENGTH:
        found.append(f"Use at least {MIN_LENGTH} characters (this one has {len(password)}).")
    if len(password) > MAX_LENGTH:
        found.append(f"Use at most {MAX_LENGTH} characters.")
    lowered = password.lower()
    if lowered in common_passwords():
        found.append("This is one of the most common passwords; choose another.")
    email = email.strip().lower()
    if email and (lowered == email or lowered == email.split("@")[0]):
        found.append("The password must not be your email address or its first part.")
    if lowered == "portal":
        found.append('The password must not be "portal".')
    return found


class Hasher:
    """Argon2id with the configured cost; `needs_rehash` lets login upgrade old hashes."""

    def __init__(self, time_cost: int = 3, memory_kib: int = 65536, parallelism: int = 4):
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib,
                                      parallelism=parallelism)

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)


def hasher_for(config: dict) -> Hasher:  # type: ignore[type-arg]
    return Hasher(config["PASSWORD_HASH_TIME_COST"], config["PASSWORD_HASH_MEMORY_KIB"],
                  config["PASSWORD_HASH_PARALLELISM"])
