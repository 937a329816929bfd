"""Mailings at scale on PostgreSQL, beside the raw engines.

1. A database of its own (patronage_bench_mailings) gets 100,000 customers with marketing consent, a group
   of 110,000 promo codes and a draft mailing whose HTML and text bodies call ``client.promocode`` once
   (the same code in both) and show a few client fields;
2. **prepare**: ``mailing_start`` (recipients fixed, capacity checked) and ``mailing_send_run`` up to the
   handover (each customer snapshotted, codes issued and recorded, every message rendered; two batches at
   once), timed in the process: target >= 20,000 messages/s. Beside it, the raw engines for the same work:
   Jinja2 rendering the same templates without the sandbox, without any database (the render's ceiling),
   and PostgreSQL's own ``UPDATE`` handing 100,000 codes to 100,000 customers in one statement (the
   reservation's floor);
3. **deliver**: a second mailing to 10,000 of them is sent through Django's SMTP backend to an SMTP sink
   (aiosmtpd, its own process, on loopback): target >= 500 messages/s. Beside it, ``smtplib`` sending the
   same number of prepared messages over one connection (the protocol's ceiling on this machine).

Writes var/bench/mailings.json; exits 0 when both targets are met, 1 when one is missed, 2 when it could
not run. ``--recipients`` / ``--deliver`` make a quicker run (the targets are for the full size).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from _common import DEFAULT_DATABASE_URL, ROOT, ensure_database, env_for, patronage_bin, psql, python

PREPARE_TARGET = 20_000.0
DELIVER_TARGET = 500.0

HTML = """<!doctype html>
<html><body style="font-family: sans-serif">
<h1>Hello {{ client.first_name }}!</h1>
<p>Thank you for your {{ client.orders }} orders at Demo Shop. As a thank-you, here is 10% off:</p>
<p style="font-size: 1.5em"><strong>{{ client.promocode('Bench 10%') }}</strong></p>
<p>Use it before the end of the month. This mail went to {{ client.email }}.</p>
</body></html>
"""
TEXT = """Hello {{ client.first_name }}!

Here is 10% off your next order: {{ client.promocode('Bench 10%') }}
This mail went to {{ client.email }}.
"""

SETUP = r"""
import sys
import django
django.setup()
from django.db import connection
from patronage.customers.services import group_create
from patronage.mailings.models import Mailing
from patronage.promocodes.services import promo_code_group_create
from patronage.testing.mailings import make_mailing
from patronage.workspace.models import Environment
from patronage.workspace.services import environment_get

customers, deliver, html, text = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
live = environment_get(Environment.LIVE)
group = group_create(environment=live, name="Delivery bench")
with connection.cursor() as c:
    c.execute(
        "INSERT INTO customers_customerprofile (environment_id, integration_id, name, email, phone, "
        "tax_exempt, accepts_marketing, attributes, closed_sessions, total_sales, password, created, "
        "last_activity, group_id) SELECT %s, 'bench-' || n, 'Customer ' || n || ' Example', "
        "'customer' || n || '@example.com', '', false, true, '{}', n %% 17, 0, '', now(), now(), "
        "CASE WHEN n <= %s THEN %s END FROM generate_series(1, %s) n",
        [live.pk, deliver, group.pk, customers],
    )
codes, _ = promo_code_group_create(environment=live, name="Bench 10%")
with connection.cursor() as c:
    c.execute(
        "INSERT INTO promocodes_promocode (environment_id, group_id, code, uploaded_at) "
        "SELECT %s, %s, 'BENCH-' || lpad(n::text, 8, '0'), now() FROM generate_series(1, %s) n",
        [live.pk, codes.pk, customers + deliver + 10_000],
    )
big = make_mailing(live, name="Prepare bench", subject="{{ client.first_name }}, 10% off", html_body=html,
                   text_body=text)
small = make_mailing(live, name="Deliver bench", subject="{{ client.first_name }}, 10% off", html_body=html,
                     text_body=text, audience=Mailing.Audience.GROUP, customer_group=group)
print(big.pk, small.pk)
"""

PREPARE = r"""
import json, sys, time
import django
django.setup()
from patronage.mailings.models import Mailing
from patronage.mailings.sending import mailing_send_run
from patronage.mailings.services import mailing_start

mailing = Mailing.objects.get(pk=int(sys.argv[1]))
start = time.perf_counter()
mailing_start(mailing=mailing, enqueue=False)
started = time.perf_counter()
outcome = mailing_send_run(mailing_id=mailing.pk, deliver=False)
done = time.perf_counter()
print(json.dumps({"start_s": started - start, "prepare_s": done - started, "total_s": done - start,
                  "prepared": outcome.prepared, "skipped": outcome.skipped}))
"""

DELIVER = r"""
import json, sys, time
import django
django.setup()
from django.conf import settings
from patronage.mailings.models import Mailing
from patronage.mailings.sending import mailing_send_run
from patronage.mailings.services import mailing_start

settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", int(sys.argv[2])
mailing = Mailing.objects.get(pk=int(sys.argv[1]))
mailing_start(mailing=mailing, enqueue=False)
mailing_send_run(mailing_id=mailing.pk, deliver=False)
start = time.perf_counter()
outcome = mailing_send_run(mailing_id=mailing.pk)
seconds = time.perf_counter() - start
print(json.dumps({"deliver_s": seconds, "sent": outcome.sent, "failed": outcome.failed,
                  "finished": outcome.finished}))
"""

RAW_RENDER = r"""
import json, sys, time
from jinja2 import Environment

html_source, text_source, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
environment = Environment(autoescape=True)
html, text, subject = (environment.from_string(html_source), Environment().from_string(text_source),
                       Environment().from_string("{{ client.first_name }}, 10% off"))

class Client:
    def __init__(self, n):
        self.first_name, self.email, self.orders = "Customer", f"customer{n}@example.com", n % 17
        self.code = f"BENCH-{n:08d}"
    def promocode(self, group):
        return self.code

start = time.perf_counter()
for n in range(count):
    client = Client(n)
    subject.render(client=client), html.render(client=client), text.render(client=client)
print(json.dumps({"s": time.perf_counter() - start}))
"""

SINK = r"""
import socket, sys
from aiosmtpd.controller import Controller

class Sink:
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"

with socket.socket() as probe:  # a free port for the sink
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
controller = Controller(Sink(), hostname="127.0.0.1", port=port)
controller.start()
print(port, flush=True)
sys.stdin.read()
controller.stop()
"""

RAW_SMTP = r"""
import json, smtplib, sys, time
from django.conf import settings
settings.configure()
from django.core.mail import EmailMultiAlternatives

port, count, html, text = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
message = EmailMultiAlternatives("Customer, 10% off", text, "news@shop.example", ["customer1@example.com"])
message.attach_alternative(html, "text/html")
data = message.message().as_bytes(linesep="\r\n")
start = time.perf_counter()
with smtplib.SMTP("127.0.0.1", port) as smtp:
    for n in range(count):
        smtp.sendmail("news@shop.example", [f"customer{n}@example.com"], data)
print(json.dumps({"s": time.perf_counter() - start}))
"""


def _run_json(snippet: str, url: str, *args: str) -> dict[str, Any]:
    _, output = python(snippet, url, *args)
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL,
        help="PostgreSQL server to use, also from BENCH_DATABASE_URL; the run makes its own database "
        "patronage_bench_mailings there (default: %(default)s)",
    )
    p.add_argument(
        "--recipients", type=int, default=100_000, help="recipients prepared (default: %(default)s)"
    )
    p.add_argument(
        "--deliver",
        type=int,
        default=10_000,
        help="messages handed to the SMTP sink in the delivery phase (default: %(default)s)",
    )
    p.add_argument(
        "--output",
        type=Path,
        default=ROOT / "var" / "bench" / "mailings.json",
        help="where the figures are written as JSON (default: %(default)s)",
    )
    a = p.parse_args(argv)
    url = a.database_url.rsplit("/", 1)[0] + "/patronage_bench_mailings"
    sink = None
    try:
        version = ensure_database(url, fresh=True)
        print(f"PostgreSQL {version}: {a.recipients:,} recipients prepared, {a.deliver:,} delivered")
        subprocess.run(
            [patronage_bin(), "migrate", "--no-input", "-v", "0"], env=env_for(url), check=True, cwd=ROOT
        )
        _, out = python(SETUP, url, str(a.recipients), str(a.deliver), HTML, TEXT)
        big, small = out.strip().splitlines()[-1].split()
        psql(url, "VACUUM ANALYZE")

        prepared = _run_json(PREPARE, url, big)
        raw_render = _run_json(RAW_RENDER, url, HTML, TEXT, str(a.recipients))
        # The reservation's floor: the engine handing the next codes to every recipient in one UPDATE.
        raw_reserve = psql(
            url,
            "BEGIN; WITH c AS (SELECT id, row_number() OVER (ORDER BY id) n FROM promocodes_promocode "
            "WHERE issued_at IS NULL ORDER BY id LIMIT "
            f"{a.recipients}), p AS (SELECT id, row_number() OVER (ORDER BY id) n FROM "
            "customers_customerprofile) UPDATE promocodes_promocode x SET issued_to_id = p.id, "
            "issued_at = now() FROM c JOIN p USING (n) WHERE x.id = c.id; ROLLBACK;",
        )
        sink = subprocess.Popen(
            [sys.executable, "-c", SINK], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert sink.stdout is not None
        port = sink.stdout.readline().strip()
        delivered = _run_json(DELIVER, url, small, port)
        raw_smtp = _run_json(RAW_SMTP, url, port, str(a.deliver), HTML, TEXT)

        r: dict[str, Any] = {
            "recipients": a.recipients,
            "start_s": round(prepared["start_s"], 2),
            "prepare_s": round(prepared["prepare_s"], 2),
            "prepare_per_s": round(a.recipients / prepared["total_s"]),
            "prepared": prepared["prepared"],
            "raw_render_per_s": round(a.recipients / raw_render["s"]),
            "raw_reserve_s": round(raw_reserve, 2),
            "delivered": delivered["sent"],
            "deliver_s": round(delivered["deliver_s"], 2),
            "deliver_per_s": round(delivered["sent"] / delivered["deliver_s"]),
            "raw_smtp_per_s": round(a.deliver / raw_smtp["s"]),
        }
        print(
            f"prepare  ours {r['prepare_per_s']:>7,} msg/s ({a.recipients:,} in "
            f"{prepared['total_s']:.2f} s: start {r['start_s']} s + reserve/render {r['prepare_s']} s)"
            f"   target >= {PREPARE_TARGET:,.0f}"
        )
        print(
            f"         raw Jinja2 render, no sandbox, no database {r['raw_render_per_s']:>7,} msg/s;"
            f" PostgreSQL UPDATE reserving {a.recipients:,} codes {r['raw_reserve_s']} s"
        )
        print(
            f"deliver  ours {r['deliver_per_s']:>7,} msg/s ({r['delivered']:,} in {r['deliver_s']} s)"
            f"   raw smtplib, one connection {r['raw_smtp_per_s']:>7,} msg/s"
            f"   target >= {DELIVER_TARGET:,.0f}"
        )
    except (RuntimeError, subprocess.CalledProcessError, OSError, ValueError) as exc:
        print(f"could not run: {exc}", file=sys.stderr)
        return 2
    finally:
        if sink is not None:
            sink.communicate("", timeout=10)
    a.output.parent.mkdir(parents=True, exist_ok=True)
    a.output.write_text(json.dumps(r, indent=2))
    met = r["prepare_per_s"] >= PREPARE_TARGET and r["deliver_per_s"] >= DELIVER_TARGET
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
