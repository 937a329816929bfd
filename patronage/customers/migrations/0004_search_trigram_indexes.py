"""Trigram indexes for the customer list's search box (PostgreSQL only).

The search is ``UPPER(column) LIKE UPPER('%term%')`` over name, email and integration ID, and
``phone LIKE '%digits%'`` for part of a number (see ``selectors.search``). A B-tree cannot serve a
substring; without these, a rare term reads every customer (about 0.5 s a query at a million rows,
twice a page: the count and the rows). With them: a few milliseconds. The expressions are the ones
Django writes for ``icontains``/``contains``, so the planner matches them.

Cost: bulk inserts of customers take about 2.3x as long (1M rows through INSERT ... SELECT: 17 s -> 41 s
on the reference machine) and the four indexes take ~120 MB per million customers.

CONCURRENTLY (hence ``atomic = False``): an existing installation keeps taking Integration API writes
while a large table is indexed. SQLite has no trigram indexes; there the search scans, as before.
"""

from django.db import migrations

from patronage.core.migration_ops import PostgreSQLOnly

TABLE = "customers_customerprofile"
TRIGRAM_INDEXES = {
    "profile_name_trgm": "upper(name::text)",
    "profile_email_trgm": "upper(email::text)",
    "profile_integration_id_trgm": "upper(integration_id::text)",
    "profile_phone_trgm": "phone",
}


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("customers", "0003_groups_passwords_birthdays"),
    ]

    operations = [
        # Trusted since PostgreSQL 13: the database owner may create it. Left in place when reversing.
        PostgreSQLOnly("CREATE EXTENSION IF NOT EXISTS pg_trgm", reverse_sql=migrations.RunSQL.noop),
        *(
            PostgreSQLOnly(
                f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {TABLE} USING gin ({expression} gin_trgm_ops)",
                reverse_sql=f"DROP INDEX CONCURRENTLY IF EXISTS {name}",
            )
            for name, expression in TRIGRAM_INDEXES.items()
        ),
    ]
