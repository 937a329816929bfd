from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from unfold.admin import ModelAdmin, TabularInline

from patronage.core.errors import DomainError

from .forms import ManagementKeyForm
from .models import ApiKey, Application, Environment, ManagementKey
from .services import (
    api_key_check_expiry,
    api_key_create,
    api_key_revoke,
    management_key_create,
    management_key_revoke,
)


class ReadOnlyAdmin(ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Environment)
class EnvironmentAdmin(ReadOnlyAdmin):
    list_display = ["name", "slug"]


class ApiKeyInline(TabularInline):
    model = ApiKey
    fields = ["name", "prefix", "status", "created", "expires_at", "revoked_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Application)
class ApplicationAdmin(ModelAdmin):
    list_display = ["name", "slug", "environment", "currency", "time_zone", "created"]
    list_filter = ["environment"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [ApiKeyInline]

    def get_readonly_fields(self, request: HttpRequest, obj: Application | None = None) -> list[str]:
        # Moving a shop to the other environment would tie its sessions to customers of the wrong one.
        return ["environment", "slug", "created"] if obj else ["created"]

    def get_prepopulated_fields(self, request: HttpRequest, obj: Application | None = None) -> dict[str, Any]:
        return {} if obj else self.prepopulated_fields


class ApiKeyForm(forms.ModelForm):
    class Meta:
        model = ApiKey
        fields = ["application", "name", "expires_at"]

    def clean_expires_at(self) -> Any:
        value = self.cleaned_data.get("expires_at")
        try:
            api_key_check_expiry(value)
        except DomainError as exc:
            raise forms.ValidationError(exc.message) from exc
        return value


class ShownOnceKeyAdmin(ModelAdmin):
    """What the admins of both kinds of API key share: the key is made by its service and shown once (a
    page of its own, never cached), and revoking asks for confirmation first. Subclasses make and revoke."""

    actions = ["revoke"]

    def key_create(self, request: HttpRequest, obj: Any) -> tuple[Any, str]:
        raise NotImplementedError

    def key_revoke(self, request: HttpRequest, key: Any) -> None:
        raise NotImplementedError

    def created_context(self, request: HttpRequest, obj: Any) -> dict[str, Any]:
        return {}

    def _template(self, name: str) -> str:
        return f"admin/workspace/{self.model._meta.model_name}/{name}.html"

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if change:
            return
        created, plaintext = self.key_create(request, obj)
        obj.pk, obj.prefix, obj.digest, obj.created = (
            created.pk,
            created.prefix,
            created.digest,
            created.created,
        )
        request._new_key = plaintext  # type: ignore[attr-defined]

    def response_add(
        self, request: HttpRequest, obj: Any, post_url_continue: str | None = None
    ) -> HttpResponse:
        plaintext = getattr(request, "_new_key", None)
        if plaintext is None:
            return super().response_add(request, obj, post_url_continue)
        response = TemplateResponse(
            request,
            self._template("created"),
            {
                **self.admin_site.each_context(request),
                **self.created_context(request, obj),
                "key": obj,
                "plaintext": plaintext,
                "opts": self.model._meta,
                "title": f"{self.model._meta.verbose_name} created",
            },
        )
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Revoke selected %(verbose_name_plural)s", permissions=["revoke"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[Any]) -> HttpResponse | None:
        related = self.list_select_related if isinstance(self.list_select_related, list | tuple) else ()
        active = [key for key in queryset.select_related(*related) if key.revoked_at is None]
        plural = self.model._meta.verbose_name_plural
        if request.POST.get("confirmed") != "yes":
            return TemplateResponse(
                request,
                self._template("revoke_confirm"),
                {
                    **self.admin_site.each_context(request),
                    "keys": active,
                    "queryset": queryset,
                    "opts": self.model._meta,
                    "title": f"Revoke {plural}?",
                    "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                },
            )
        for key in active:
            self.key_revoke(request, key)
        self.message_user(
            request, f"Revoked {len(active)} {self.model._meta.verbose_name}(s).", messages.SUCCESS
        )
        return None


@admin.register(ApiKey)
class ApiKeyAdmin(ShownOnceKeyAdmin):
    add_form = ApiKeyForm
    list_display = ["name", "prefix", "application", "status", "created", "expires_at", "revoked_at"]
    list_filter = ["application__environment", "application"]
    search_fields = ["name", "prefix", "application__slug"]
    list_select_related = ["application__environment"]
    fields = ["application", "name", "expires_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> list[str]:
        # Keys are immutable once made: a changed key would be a different key.
        return (
            ["application", "name", "expires_at", "prefix", "status", "created", "revoked_at"] if obj else []
        )

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = self.add_form
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> list[str]:
        return self.get_readonly_fields(request, obj) if obj else self.fields

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return self.has_change_permission(request)

    def key_create(self, request: HttpRequest, obj: ApiKey) -> tuple[ApiKey, str]:
        return api_key_create(
            application=obj.application, name=obj.name, expires_at=obj.expires_at, actor=request.user
        )

    def key_revoke(self, request: HttpRequest, key: ApiKey) -> None:
        api_key_revoke(api_key=key, actor=request.user)


@admin.register(ManagementKey)
class ManagementKeyAdmin(ShownOnceKeyAdmin):
    """Keys for scripts calling the Management API. Staff see and make their own; superusers everyone's."""

    list_display = ["name", "user", "prefix", "status", "created", "expires_at", "last_used_at", "revoked_at"]
    search_fields = ["name", "prefix", "user__username"]
    list_select_related = ["user"]
    empty_value_display = "never"  # the only empty values: expires, last used, revoked
    readonly_after_creation = [
        "user",
        "name",
        "prefix",
        "status",
        "created",
        "expires_at",
        "last_used_at",
        "revoked_at",
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ManagementKey]:
        keys = super().get_queryset(request)
        return keys if request.user.is_superuser else keys.filter(user=request.user)  # type: ignore[misc]

    def get_list_filter(self, request: HttpRequest) -> list[Any]:
        return ["user"] if request.user.is_superuser else []

    def get_fields(self, request: HttpRequest, obj: ManagementKey | None = None) -> list[str]:
        if obj is not None:
            return self.readonly_after_creation
        return ["user", "name", "expires_at"] if request.user.is_superuser else ["name", "expires_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: ManagementKey | None = None) -> list[str]:
        # Keys are immutable once made: a changed key would be a different key.
        return self.readonly_after_creation if obj is not None else []

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = type("ManagementKeyAddForm", (ManagementKeyForm,), {"actor": request.user})
        return super().get_form(request, obj, change=change, **kwargs)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # revoke instead: the row stays, with its owner and last use

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        # Whoever may make keys may revoke their own (the list shows no one else's unless superuser).
        return self.has_add_permission(request) or self.has_change_permission(request)

    def key_create(self, request: HttpRequest, obj: ManagementKey) -> tuple[ManagementKey, str]:
        return management_key_create(
            user=obj.user, name=obj.name, expires_at=obj.expires_at, actor=request.user
        )

    def key_revoke(self, request: HttpRequest, key: ManagementKey) -> None:
        management_key_revoke(key=key, actor=request.user)

    def created_context(self, request: HttpRequest, obj: ManagementKey) -> dict[str, Any]:
        return {"api_root": request.build_absolute_uri("/api/v1/")}
