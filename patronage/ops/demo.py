"""Demo data: two shops and thousands of customers with carts and orders, inserted in bulk."""

from __future__ import annotations

import datetime as dt
import io
import random
import secrets
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from PIL import Image

from patronage.campaigns.models import Campaign
from patronage.campaigns.services import CampaignInput, campaign_create, ruleset_create
from patronage.core import clock
from patronage.customer_sessions.models import CartItem, CustomerSession, SessionState
from patronage.customer_sessions.services import CartItemInput, SessionInput, session_update
from patronage.customers.models import CustomerGroup, CustomerProfile, birth_md_of
from patronage.customers.services import group_create, profiles_assign_group
from patronage.mailings.models import Mailing
from patronage.mailings.services import MailingInput, mailing_save
from patronage.offers.models import GalleryImage, LinkType, Offer, OfferAssignment, OfferType
from patronage.offers.services import OfferInput, gallery_image_upload, offer_create
from patronage.promocodes.models import PromoCodeGroup
from patronage.promocodes.services import promo_code_group_create
from patronage.segments.models import Segment
from patronage.segments.services import segment_create
from patronage.workspace.models import Application, Environment
from patronage.workspace.services import environment_get

FIRST = [
    "Anna",
    "Piotr",
    "Maria",
    "Jan",
    "Katarzyna",
    "Tomasz",
    "Olivia",
    "Liam",
    "Emma",
    "Noah",
    "Sofia",
    "Lucas",
    "Mia",
    "Ethan",
    "Zoe",
    "Adam",
    "Ewa",
    "Marek",
    "Ida",
    "Leo",
]
LAST = [
    "Nowak",
    "Kowalski",
    "Smith",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Wilson",
    "Lee",
    "Brown",
    "Taylor",
    "Clark",
    "Lewis",
    "Walker",
    "Young",
    "King",
    "Hall",
]
PRODUCTS = [
    ("Espresso beans 1kg", "COF-001", "coffee", Decimal("24.90")),
    ("Ceramic mug", "MUG-010", "kitchen", Decimal("9.50")),
    ("Milk frother", "FRO-200", "appliances", Decimal("39.00")),
    ("Paper filters x100", "FIL-100", "coffee", Decimal("4.20")),
    ("Gift card", "GFT-050", "gifts", Decimal("50.00")),
    ("Travel tumbler", "TUM-330", "kitchen", Decimal("18.75")),
]
BATCH = 2000
DEMO_GROUPS = ["VIP", "Wholesale", "B2B"]
DEMO_APPS = [
    ("Demo Shop", "demo-shop", Environment.LIVE, "USD"),
    ("Demo Sandbox", "demo-sandbox", Environment.SANDBOX, "USD"),
]


def demo_applications() -> list[Application]:
    apps = []
    for name, slug, env, currency in DEMO_APPS:
        app, _ = Application.objects.get_or_create(
            slug=slug,
            defaults={
                "name": name,
                "environment": environment_get(env),
                "currency": currency,
                "time_zone": "Europe/Warsaw",
                "description": "Created by `patronage demo`.",
            },
        )
        apps.append(app)
    return apps


def _phone(rng: random.Random) -> str:
    # US numbers in the 201-555-01xx..99xx fictional range are valid E.164 and never real subscribers.
    return f"+1201555{rng.randint(100, 9999):04d}"


def _sessions_for(
    rng: random.Random,
    app: Application,
    profile: CustomerProfile,
    start: dt.datetime,
    serial: int,
    now: dt.datetime,
) -> tuple[list[CustomerSession], list[list[CartItem]]]:
    """A few sessions between the customer's creation and now: every order was closed in the past."""
    sessions, carts = [], []
    # The last session starts at least ten minutes ago, so its close (five minutes later) is in the past too.
    span = max(int((now - start).total_seconds() // 60) - 10, 0)
    for n in range(rng.choice((0, 1, 1, 2, 3))):
        created = start + dt.timedelta(minutes=rng.randint(0, span))
        state = rng.choices(
            [SessionState.CLOSED, SessionState.OPEN, SessionState.CANCELLED], weights=[7, 2, 1]
        )[0]
        items = []
        for position, (name, sku, category, price) in enumerate(rng.sample(PRODUCTS, rng.randint(1, 4))):
            items.append(
                CartItem(
                    position=position,
                    name=name,
                    sku=sku,
                    category=category,
                    price=price,
                    quantity=rng.randint(1, 3),
                )
            )
        total = sum((i.price * i.quantity for i in items), Decimal("0"))
        closed_at = created + dt.timedelta(minutes=5) if state != SessionState.OPEN else None
        sessions.append(
            CustomerSession(
                application=app,
                integration_id=f"demo-{serial}-{n}",
                profile=profile,
                profile_integration_id=profile.integration_id,
                state=state,
                cart_item_count=len(items),
                cart_item_total=total,
                total=total,
                first_session=n == 0,
                created=created,
                updated=closed_at or created,
                closed_at=closed_at,
            )
        )
        carts.append(items)
    return sessions, carts


def demo_load(*, customers: int, seed: int = 7, progress: Callable[[int], None] | None = None) -> int:
    """Add ``customers`` live profiles (and a tenth as many in sandbox) with sessions; return how many."""
    rng = random.Random(seed)
    live_app, sandbox_app = demo_applications()
    now = clock.now()
    start = now - dt.timedelta(days=365)
    made = 0
    plan = [(live_app, customers), (sandbox_app, max(customers // 10, 1) if customers else 0)]
    for app, count in plan:
        offset = CustomerProfile.objects.filter(environment=app.environment).count()
        groups = [
            CustomerGroup.objects.get_or_create(environment=app.environment, name=name)[0]
            for name in DEMO_GROUPS
        ]
        for batch_start in range(0, count, BATCH):
            with transaction.atomic():
                profiles = []
                for i in range(batch_start, min(batch_start + BATCH, count)):
                    serial = offset + i
                    first, last = rng.choice(FIRST), rng.choice(LAST)
                    birth_date = dt.date(rng.randint(1950, 2006), rng.randint(1, 12), rng.randint(1, 28))
                    profiles.append(
                        CustomerProfile(
                            environment=app.environment,
                            integration_id=f"cust-{serial:07d}",
                            name=f"{first} {last}",
                            email=f"{first}.{last}.{serial}@example.com".lower(),
                            phone=_phone(rng),
                            birth_date=birth_date,
                            birth_md=birth_md_of(birth_date),
                            group=rng.choice(groups) if rng.random() < 0.2 else None,
                            accepts_marketing=rng.random() < 0.6,
                            tax_exempt=rng.random() < 0.05,
                            attributes={"LoyaltyTier": rng.choice(["bronze", "silver", "gold"])},
                            created=start + dt.timedelta(minutes=rng.randint(0, 60 * 24 * 200)),
                            last_activity=now - dt.timedelta(minutes=rng.randint(0, 60 * 24 * 60)),
                        )
                    )
                sessions: list[CustomerSession] = []
                carts: list[list[CartItem]] = []
                for profile in profiles:
                    s, c = _sessions_for(
                        rng, app, profile, profile.created, int(profile.integration_id[5:]), now
                    )
                    sessions += s
                    carts += c
                    orders = [x for x in s if x.is_order]
                    profile.closed_sessions = len(orders)
                    profile.total_sales = sum((x.total for x in orders), Decimal("0"))
                # Counters are known before the insert, so profiles are written once, never updated.
                CustomerProfile.objects.bulk_create(profiles, batch_size=1000)
                CustomerSession.objects.bulk_create(sessions, batch_size=1000)
                items = []
                for session, cart in zip(sessions, carts, strict=True):
                    for item in cart:
                        item.session = session
                        items.append(item)
                CartItem.objects.bulk_create(items, batch_size=2000)
            made += len(profiles)
            if progress:
                progress(len(profiles))
    return made


DEMO_OFFERS = [
    # system name, visible name, description, validity, colour, type, public
    (
        "demo-welcome",
        "10% off your next order",
        "For everyone signed in: use code WELCOME10 at checkout.",
        "All month",
        "#3b44d1",
        OfferType.ONLINE_AND_RETAIL,
        True,
    ),
    (
        "demo-mug",
        "A free ceramic mug",
        "With any order of coffee beans, in our shops.",
        "While stocks last",
        "#e07b32",
        OfferType.RETAIL,
        False,
    ),
    (
        "demo-frother",
        "Milk frother at half price",
        "Only for you, only online.",
        "Until the end of next week",
        "#22a06b",
        OfferType.ONLINE,
        False,
    ),
]


def _demo_picture(title: str, colour: str) -> GalleryImage:
    buffer = io.BytesIO()
    Image.new("RGB", (640, 360), colour).save(buffer, format="PNG")
    upload = SimpleUploadedFile(f"{title}.png", buffer.getvalue(), content_type="image/png")
    return gallery_image_upload(file=upload, title=title)


def demo_offers(*, email: str) -> list[Offer]:
    """Three offers in the demo shop: one public, two assigned to ``email`` (the demo panel customer)."""
    shop = demo_applications()[0]
    now = clock.now()
    made = []
    for order, (system_name, name, description, validity, colour, kind, public) in enumerate(DEMO_OFFERS):
        if Offer.objects.filter(system_name=system_name).exists():
            continue
        picture = _demo_picture(system_name, colour)
        data = OfferInput(
            system_name=system_name,
            name=name,
            description=description,
            validity_text=validity,
            link="https://shop.example.com/offers",
            picture=picture,
            offer_type=kind,
            applications=[shop],
            starts_at=now - dt.timedelta(days=1),
            ends_at=now + dt.timedelta(days=30),
            sort_order=order,
            is_active=True,
            is_public=public,
            link_type=LinkType.PROMOTION_PAGE,
            object_id=system_name,
            image_small=picture,
            image_medium=picture,
            image_big=picture,
        )
        offer = offer_create(environment=shop.environment, data=data)
        if not public:
            OfferAssignment.objects.create(offer=offer, email=email.lower())
        made.append(offer)
    return made


def demo_panel_customer() -> tuple[str, str]:
    """Give the demo shop's first customer a random panel password; return their email and it."""
    live_app = demo_applications()[0]
    profile = (
        CustomerProfile.objects.filter(environment=live_app.environment, email__isnull=False)
        .order_by("pk")
        .first()
    )
    if profile is None or profile.email is None:
        raise RuntimeError("no demo customer with an email: run demo_load first")
    password = secrets.token_urlsafe(9)
    profile.set_password(password)
    profile.save(update_fields=["password"])
    return profile.email, password


DEMO_MAILING_HTML = """<h1>Welcome, {{ client.first_name }}!</h1>
<p>Thank you for shopping with us. Here is 10% off your next order:</p>
<p style="font-size: 1.5em"><strong>{{ client.promocode('Welcome 10%') }}</strong></p>
{% if client.orders > 3 %}
<p>You are one of our regulars: thank you for {{ client.orders }} orders.</p>
{% endif %}
"""
DEMO_MAILING_TEXT = """Welcome, {{ client.first_name }}!

Here is 10% off your next order: {{ client.promocode('Welcome 10%') }}
"""


def demo_mailing() -> Mailing:
    """A group of demo codes (enough for every consenting demo customer) and a draft mailing issuing them."""
    environment = demo_applications()[0].environment
    consenting = CustomerProfile.objects.filter(environment=environment, accepts_marketing=True).count()
    rng = random.Random(11)
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    codes = {"WELCOME-" + "".join(rng.choices(alphabet, k=8)) for _ in range(consenting + 500)}
    promo_code_group_create(
        environment=environment,
        name="Welcome 10%",
        description="Demo codes: 10% off the next order",
        codes=sorted(codes),
    )
    return mailing_save(
        environment=environment,
        data=MailingInput(
            name="Welcome mailing",
            sender="Demo Shop <news@shop.example>",
            subject="{{ client.first_name }}, 10% off your next order",
            html_body=DEMO_MAILING_HTML,
            text_body=DEMO_MAILING_TEXT,
            audience=Mailing.Audience.CONSENTING,
        ),
    )


def demo_segment() -> Segment:
    """A segment mixing profile, order and promo-code conditions, for the builder to open on."""
    environment = demo_applications()[0].environment
    welcome = PromoCodeGroup.objects.get(environment=environment, name="Welcome 10%")
    rules = {
        "type": "group",
        "match": "all",
        "negate": False,
        "children": [
            {"type": "condition", "field": "profile.accepts_marketing", "operator": "is", "value": True},
            {
                "type": "group",
                "match": "any",
                "negate": False,
                "children": [
                    {"type": "condition", "field": "orders.count", "operator": "gte", "value": 3},
                    {"type": "condition", "field": "orders.total_spent", "operator": "gte", "value": 500},
                ],
            },
            {
                "type": "condition",
                "field": "promo_codes.issued_from",
                "operator": "any_of",
                "value": [welcome.pk],
                "negate": True,
            },
        ],
    }
    return segment_create(
        environment=environment,
        name="Regulars without a welcome code",
        description="Consenting customers with 3+ orders or 500+ spent who were not sent a Welcome code",
        rules=rules,
    )


VIP = "VIP"
DEMO_CAMPAIGNS: list[tuple[str, str, dict[str, Any]]] = [
    (
        "VIP 10%",
        "Customers of the VIP group get 10% off the cart items.",
        {
            "title": "VIP 10%",
            "condition": ["and", ["=", [".", "Profile", "Group"], VIP]],
            "effects": [
                [
                    "setDiscount",
                    "VIP 10%",
                    ["*", [".", "Session", "CartItemTotal"], ["/", 10, 100]],
                    "cartItems",
                ]
            ],
        },
    ),
    (
        "Free shipping over 50",
        "Shipping is free when the cart items come to 50 or more.",
        {
            "title": "Free shipping",
            "condition": ["and", [">=", [".", "Session", "CartItemTotal"], 50]],
            "effects": [["setDiscountPerAdditionalCost", "Free shipping", "shipping"]],
        },
    ),
]
DEMO_VIPS = 5  # demo customers put in the VIP group
SHIPPING = Decimal("4.99")
# (customer: a VIP or not, cart as (PRODUCTS index, quantity)): one order per campaign, both, and neither.
DEMO_ORDERS = [
    (True, [(0, 2), (1, 1)]),  # 59.30: 10% off and free shipping
    (True, [(3, 2)]),  # 8.40: 10% off only
    (False, [(4, 1), (1, 1)]),  # 59.50: free shipping only
    (False, [(5, 1)]),  # 18.75: nothing
]


def demo_campaigns() -> list[Campaign]:
    """The demo shop's two running campaigns ("VIP 10%" for its VIP group, "Free shipping over 50"), a few
    VIP customers, and a few orders closed through the engine so that the customers' figures (discounted
    orders, accrued discounts, net revenue) show something. Run again, it adds nothing."""
    shop = demo_applications()[0]
    made = []
    for name, description, ruleset in DEMO_CAMPAIGNS:
        if Campaign.objects.filter(application=shop, name=name, deleted_at=None).exists():
            continue
        campaign = campaign_create(
            application=shop, data=CampaignInput(name=name, description=description, state="enabled")
        )
        ruleset_create(campaign=campaign, rules=[ruleset], activate=True)
        made.append(campaign)
    customers = CustomerProfile.objects.filter(environment=shop.environment).order_by("pk")
    vip = CustomerGroup.objects.filter(environment=shop.environment, name=VIP).first()
    if vip is None:
        vip = group_create(environment=shop.environment, name=VIP)
    profiles_assign_group(
        queryset=customers.filter(pk__in=list(customers.values_list("pk", flat=True)[:DEMO_VIPS])), group=vip
    )
    vips = list(customers.filter(group=vip).values_list("integration_id", flat=True)[:2])
    others = list(customers.exclude(group=vip).values_list("integration_id", flat=True)[:2])
    for n, (is_vip, cart) in enumerate(DEMO_ORDERS):
        pool = vips if is_vip else others
        session_id = f"demo-campaigns-{n}"
        if not pool or CustomerSession.objects.filter(application=shop, integration_id=session_id).exists():
            continue
        items = [
            CartItemInput(
                sku=PRODUCTS[i][1],
                name=PRODUCTS[i][0],
                category=PRODUCTS[i][2],
                price=PRODUCTS[i][3],
                quantity=q,
            )
            for i, q in cart
        ]
        session_update(
            application=shop,
            integration_id=session_id,
            data=SessionInput(
                profile_id=pool[n % len(pool)],
                cart_items=items,
                additional_costs={"shipping": SHIPPING},
                state=SessionState.CLOSED,
            ),
        )
    return made
