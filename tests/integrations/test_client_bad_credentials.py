"""A stored credential that cannot travel in an HTTP header is a failed call, not a crash."""

import pytest

from integrations.client import ProviderClient
from integrations.crypto import encrypt
from integrations.models import Credential
from tests.support.local_server import LocalServer, Reply


@pytest.mark.parametrize("value", ["sk_live_caf\u20ac", "sk_live_line\nbreak"])
def test_unsendable_credential_gives_an_error_result_without_sending(provider, value):
    # Rows written before values were checked (or by hand in the database).
    row = Credential.objects.get(provider=provider, purpose="api_key", active_until__isnull=True)
    sealed = encrypt(value)
    Credential.objects.filter(pk=row.pk).update(key_id=sealed.key_id, ciphertext=sealed.ciphertext)
    with LocalServer(lambda request: Reply(200, json={"id": "ch_1"})) as server:
        provider.base_url = server.url
        provider.save()
        result = ProviderClient(provider).request("GET", "/v1/charges/ch_1", operation="charge.retrieve")
        assert server.requests == []

    assert not result.ok
    assert result.error_code == "ECONN"
    assert "credentials" in result.message
    assert value not in result.message
