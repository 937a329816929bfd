from django.urls import path

from . import codes, offers, views

app_name = "panel"

# Mounted at /panel/<slug:shop>/ by patronage/urls.py; every view receives the shop slug.
urlpatterns = [
    path("", views.index, name="index"),
    path("login/", views.login, name="login"),
    path("logout/", views.logout, name="logout"),
    path("reset/", views.password_reset, name="password_reset"),
    path("reset/sent/", views.password_reset_sent, name="password_reset_sent"),
    path("reset/<str:uidb64>/<str:token>/", views.password_reset_confirm, name="password_reset_confirm"),
    path("account/", views.account, name="account"),
    path("account/password/", views.password_change, name="password_change"),
    path("offers/", offers.offer_list, name="offers"),
    path("offers/<int:offer_id>/favourite/", offers.favourite_set, name="offer_favourite"),
    path("offers/<int:offer_id>/claim/", offers.claim, name="offer_claim"),
    path("codes/", codes.code_list, name="codes"),
]
