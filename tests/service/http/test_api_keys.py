"""API keys (settings and a re-read key file) and CORS, through the ASGI stack."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import SecretStr

from service.app import create_app
from service.http import api_keys
from service.http.api_keys import ApiKeys, KeyFileError, read_key_file
from service.settings import Settings
from tests.support.serving import ADMIN_KEY, Serving

pytestmark = pytest.mark.anyio

RANK = {"user_id": "u1", "candidates": ["i1", "i3"]}


def _write(path: Path, text: str, mtime_ns: int) -> None:
    path.write_text(text)
    os.utime(path, ns=(mtime_ns, mtime_ns))


def test_key_file_lines_comments_and_blanks(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text("# feed service\n  alpha  \n\nbeta\n#gamma\n")
    assert read_key_file(path) == ["alpha", "beta"]
    keys = ApiKeys(["delta"], path)
    assert keys.enabled
    assert [keys.accepts(k) for k in ("alpha", "beta", "delta", "gamma", "", None)] == [
        True,
        True,
        True,
        False,
        False,
        False,
    ]


def test_no_keys_means_disabled() -> None:
    keys = ApiKeys()
    assert not keys.enabled and not keys.accepts("anything")


def test_an_empty_key_file_accepts_nothing(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text("# all keys revoked\n")
    keys = ApiKeys([], path)
    assert keys.enabled and not keys.accepts("") and not keys.accepts("old")


def test_a_changed_file_is_re_read_and_a_vanished_one_keeps_its_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api_keys, "RECHECK_INTERVAL_S", 0.0)
    path = tmp_path / "keys"
    _write(path, "old-key\n", 1_000_000_000)
    keys = ApiKeys([], path)
    assert keys.accepts("old-key")
    _write(path, "new-key\n", 2_000_000_000)
    assert keys.accepts("new-key") and not keys.accepts("old-key")
    path.unlink()
    assert keys.accepts("new-key")


def test_a_missing_key_file_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="cannot read the API key file"):
        create_app(Settings(api_keys_file=tmp_path / "absent"))


def test_every_key_is_a_secret(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text("from-file\n")
    settings = Settings(
        api_keys=SecretStr("one, two"), admin_api_key=SecretStr("admin"), api_keys_file=path
    )
    assert {"one", "two", "admin", "from-file"} <= set(settings.secret_values())


async def test_rank_is_open_by_default(serving: Serving) -> None:
    async with serving() as client:
        assert (await client.post("/v1/rank", json=RANK)).status_code == 200


async def test_rank_keys_from_settings(serving: Serving) -> None:
    async with serving(api_keys="first,second") as client:
        missing = await client.post("/v1/rank", json=RANK)
        wrong = await client.post("/v1/rank", json=RANK, headers={"X-API-Key": "third"})
        admin = await client.post("/v1/rank", json=RANK, headers={"X-API-Key": ADMIN_KEY})
        good = [
            await client.post("/v1/rank", json=RANK, headers={"X-API-Key": key})
            for key in ("first", "second")
        ]
        health = await client.get("/readyz")
    assert [missing.status_code, wrong.status_code, admin.status_code] == [401, 401, 401]
    assert "missing X-API-Key" in missing.json()["detail"]
    assert wrong.headers["www-authenticate"] == "ApiKey"
    assert [r.status_code for r in good] == [200, 200]
    assert health.status_code == 200


async def test_a_key_is_checked_before_the_body(serving: Serving) -> None:
    async with serving(api_keys="first") as client:
        response = await client.post("/v1/rank", json={"user_id": ""})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "ApiKey"
    # The rest of the body is not read: the connection is closed.
    assert response.headers["connection"] == "close"


def test_the_schema_declares_the_api_keys() -> None:
    schema = create_app(Settings.model_construct()).openapi()
    schemes = schema["components"]["securitySchemes"]
    assert set(schemes) == {"RankApiKey", "AdminApiKey"}
    for scheme in schemes.values():
        assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "X-API-Key")
    assert schema["paths"]["/v1/rank"]["post"]["security"] == [{"RankApiKey": []}]
    admin = [
        operation
        for path, item in schema["paths"].items()
        if path.startswith("/v1/admin/")
        for operation in item.values()
    ]
    assert admin and all(op["security"] == [{"AdminApiKey": []}] for op in admin)
    assert "security" not in schema["paths"]["/livez"]["get"]


async def test_admin_keys_from_a_file(serving: Serving, tmp_path: Path) -> None:
    path = tmp_path / "admin-keys"
    path.write_text("ops-one\nops-two\n")
    events = {"events": [{"item_id": "i1", "event": "click", "ts": 1_764_000_000}]}
    async with serving(admin_api_key=None, admin_api_keys_file=path) as client:
        statuses = [
            (await client.post("/v1/admin/users/u1/events", json=events, headers=h)).status_code
            for h in ({}, {"X-API-Key": "ops-three"}, {"X-API-Key": "ops-two"})
        ]
    assert statuses == [401, 401, 200]


async def test_cors_is_off_by_default(serving: Serving) -> None:
    async with serving() as client:
        response = await client.options("/v1/rank", headers=_preflight("https://shop.example"))
    assert "access-control-allow-origin" not in response.headers


async def test_cors_allows_only_the_configured_origins(serving: Serving) -> None:
    async with serving(cors_allow_origins="https://shop.example, https://admin.example") as client:
        allowed = await client.options("/v1/rank", headers=_preflight("https://admin.example"))
        refused = await client.options("/v1/rank", headers=_preflight("https://evil.example"))
        simple = await client.post(
            "/v1/rank", json=RANK, headers={"Origin": "https://shop.example"}
        )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://admin.example"
    assert "x-api-key" in allowed.headers["access-control-allow-headers"].lower()
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    assert simple.headers["access-control-allow-origin"] == "https://shop.example"
    assert "retry-after" in simple.headers["access-control-expose-headers"].lower()


def _preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, x-api-key",
    }
