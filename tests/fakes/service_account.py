"""A Google service-account key made here (as the Cloud console makes one), trusted by a FakeVendors'
Data Manager token endpoint, which verifies the RS256 JWTs it signs."""

from __future__ import annotations

import json
from functools import cache

from tests.fakes.vendors import FakeVendors

EMAIL = "tagpipe@shop-project.iam.gserviceaccount.com"


@cache
def _key_pair() -> tuple[str, bytes]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()  # fmt: skip
    return private, key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def service_account_key(fakes: FakeVendors, email: str = EMAIL, trusted: bool = True) -> str:
    """The key JSON a destination reads from its credentials variable, pointing at the fake's token URI."""
    private, public = _key_pair()
    if trusted:
        fakes.data_manager.trust(email, public)
    return json.dumps({"type": "service_account", "project_id": "shop-project", "private_key_id": "k1",
                       "private_key": private, "client_email": email, "token_uri": f"{fakes.url}/token"})  # fmt: skip
