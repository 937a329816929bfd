"""Settings an operator sets through the environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from django.test import Client

PRINT_DATABASE = (
    "from django.conf import settings; d = settings.DATABASES['default']; "
    "print(json.dumps({'options': d.get('OPTIONS', {}), "
    "'cursors': d.get('DISABLE_SERVER_SIDE_CURSORS', False), 'age': d['CONN_MAX_AGE']}))"
)


def database_settings(**env: str) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-c", f"import json, django; django.setup(); {PRINT_DATABASE}"],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "patronage.settings",
            "DATABASE_URL": "postgresql://patronage@db.example:5432/patronage",
            **env,
        },
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


@pytest.mark.parametrize("pgbouncer", ["", "0"])
def test_postgresql_prepares_statements_and_turns_jit_off_by_default(pgbouncer: str) -> None:
    assert database_settings(PATRONAGE_PGBOUNCER=pgbouncer) == {
        "options": {"server_side_binding": True, "prepare_threshold": 2, "options": "-c jit=off"},
        "cursors": False,
        "age": 600,
    }


def test_behind_pgbouncer_nothing_outlives_a_transaction_on_the_connection() -> None:
    # PgBouncer in transaction mode: no prepared statements, no cursor WITH HOLD, no startup option
    assert database_settings(PATRONAGE_PGBOUNCER="1") == {"options": {}, "cursors": True, "age": 600}


@pytest.mark.django_db
@pytest.mark.parametrize("docs", ["/docs", "/api/v1/docs"])
def test_the_docs_pages_load_swagger_ui_from_this_server(client: Client, docs: str) -> None:
    # WhiteNoise serves the installed packages' static files in every way the app runs (`run` and `serve`)
    page = client.get(docs).content.decode()
    assert "cdn" not in page.lower()
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "swagger-ui-init.js"):
        assert f'"/static/ninja/{asset}"' in page
        response = client.get(f"/static/ninja/{asset}")
        assert response.status_code == 200
        assert b"".join(response.streaming_content)  # type: ignore[attr-defined]
