"""Who is signed in to the customer panel: one session key per environment, apart from staff auth.

The key holds the profile id and a hash of the profile's password hash (as django.contrib.auth does), so
a password change signs out every other session of that customer. Staff sign-in (``_auth_user_id``) lives
in the same Django session and is never read or cleared here.
"""

from __future__ import annotations

from django.http import HttpRequest
from django.utils.crypto import constant_time_compare

from patronage.customers.accounts import session_auth_hash, session_profile
from patronage.customers.models import CustomerProfile
from patronage.workspace.models import Environment


def _key(environment_id: int) -> str:
    return f"panel:{environment_id}"


def panel_login(request: HttpRequest, profile: CustomerProfile) -> None:
    """Sign in; also called after the customer's own password change to keep this session signed in."""
    # A new session key, so a key planted before (session fixation) or leaked before is worth nothing.
    request.session.cycle_key()
    request.session[_key(profile.environment_id)] = {"id": profile.pk, "hash": session_auth_hash(profile)}


def panel_logout(request: HttpRequest, environment: Environment) -> None:
    request.session.pop(_key(environment.pk), None)
    request.session.cycle_key()


def panel_customer(request: HttpRequest, environment: Environment) -> CustomerProfile | None:
    """The signed-in customer of this environment, or None (a stale session is cleared)."""
    stored = request.session.get(_key(environment.pk))
    if not isinstance(stored, dict):
        return None
    profile = session_profile(environment=environment, profile_id=stored.get("id"))
    if profile is None or not constant_time_compare(str(stored.get("hash", "")), session_auth_hash(profile)):
        request.session.pop(_key(environment.pk), None)
        return None
    return profile
