from __future__ import annotations

import json
from typing import Any

from django.test import Client


class IntegrationClient:
    """Django's test client speaking to the Integration API with an API key."""

    def __init__(self, key: str) -> None:
        self.client = Client()
        self.key = key

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        raw: bytes | str | None = None,
    ) -> Any:
        data = raw if raw is not None else (json.dumps(body) if body is not None else "")
        return self.client.generic(
            method,
            path,
            data=data,
            content_type="application/json",
            headers={"Authorization": f"ApiKey-v1 {self.key}", **(headers or {})},
        )

    def put(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.call("PUT", path, body, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.call("POST", path, body, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.call("GET", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.call("DELETE", path, **kwargs)

    def session(self, session_id: str, **customer_session: Any) -> Any:
        return self.put(f"/v2/customer_sessions/{session_id}", {"customerSession": customer_session})
