"""JSON shapes shared by the Management API's routers (camelCase)."""

import datetime as dt

from ninja import Schema

from patronage.customers.models import CustomerProfile


class ProfileOut(Schema):
    id: int
    integrationId: str
    name: str
    email: str | None
    phone: str
    created: dt.datetime
    lastActivity: dt.datetime
    closedSessions: int

    @staticmethod
    def resolve_integrationId(obj: CustomerProfile) -> str:
        return obj.integration_id

    @staticmethod
    def resolve_lastActivity(obj: CustomerProfile) -> dt.datetime:
        return obj.last_activity

    @staticmethod
    def resolve_closedSessions(obj: CustomerProfile) -> int:
        return obj.closed_sessions
