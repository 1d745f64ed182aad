"""OpenID id_tokens: RS256-signed with a key generated per sandbox, published at the JWKS URL."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

KID = "sandbox-key-1"


class Signer:
    """Lazily creates an RSA key; `sign` returns None when PyJWT/cryptography are unavailable."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: Any = None

    def _private_key(self) -> Any:
        with self._lock:
            if self._key is None:
                from cryptography.hazmat.primitives.asymmetric import rsa
                self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            return self._key

    def sign(self, issuer: str, client_id: str, realm: str) -> str | None:
        """An id_token intuit-oauth accepts: iss = discovery issuer, aud = [client id], exp in real time."""
        try:
            import jwt
        except ImportError:  # pragma: no cover - PyJWT ships with intuit-oauth
            return None
        now = int(time.time())
        claims = {"iss": issuer, "aud": [client_id], "sub": f"sbx-user-{realm}", "realmid": realm,
                  "iat": now, "auth_time": now, "exp": now + 3600}
        return jwt.encode(claims, self._private_key(), algorithm="RS256", headers={"kid": KID})

    def jwks(self) -> dict[str, Any]:
        """The public half, in the JWKS format `jwt.PyJWKSet.from_dict` reads."""
        try:
            from jwt.algorithms import RSAAlgorithm
        except ImportError:  # pragma: no cover
            return {"keys": []}
        key = json.loads(RSAAlgorithm.to_jwk(self._private_key().public_key()))
        key.update({"kid": KID, "use": "sig", "alg": "RS256"})
        return {"keys": [key]}
