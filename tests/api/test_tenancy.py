"""The town prefix of paths and what a key may see (pure: no database)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from stadtpuls.api.auth import Principal
from stadtpuls.api.problems import Problem
from stadtpuls.api.tenancy import Tenant, TenantPrefixMiddleware, scope_for


def _route(path: str) -> tuple[str, bytes, Any]:
    seen: dict[str, Any] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.update(scope)

    asyncio.run(TenantPrefixMiddleware(app)({"type": "http", "path": path, "raw_path": path.encode()}, None, None))
    return seen["path"], seen["raw_path"], seen["state"]["tenant"]


@pytest.mark.parametrize(
    ("path", "routed", "tenant"),
    [
        ("/t/nordstadt/parking", "/parking", "nordstadt"),
        ("/api/v1/t/nordstadt/parking/lots", "/api/v1/parking/lots", "nordstadt"),
        ("/t/a-2", "/", "a-2"),
        ("/parking", "/parking", None),
        ("/api/v1/parking/lots", "/api/v1/parking/lots", None),
        ("/t/Upper/parking", "/t/Upper/parking", None),  # not a slug: routed as it is (404)
        ("/x/t/a/parking", "/x/t/a/parking", None),
    ],
)
def test_the_town_prefix_is_taken_off_the_path(path: str, routed: str, tenant: str | None) -> None:
    assert _route(path) == (routed, routed.encode(), tenant)


A, B = Tenant("a", "Town A"), Tenant("b", "Town B")


def test_an_operator_key_sees_its_own_town_and_another_town_is_not_found() -> None:
    op = Principal("operator", "k1", tenant="a")
    assert scope_for(op, None) == "a"
    assert scope_for(op, A) == "a"
    with pytest.raises(Problem) as e:
        scope_for(op, B)
    assert e.value.status_code == 404


def test_an_admin_key_sees_every_town_or_the_one_its_path_names() -> None:
    admin = Principal("admin", "k2", tenant="a")
    assert scope_for(admin, None) is None
    assert scope_for(admin, B) == "b"


def test_a_town_is_called_by_its_brand_name_when_it_has_one() -> None:
    assert Tenant("a", "Stadt A").title == "Stadt A"
    assert Tenant("a", "Stadt A", brand_name="A-Stadt live").title == "A-Stadt live"
