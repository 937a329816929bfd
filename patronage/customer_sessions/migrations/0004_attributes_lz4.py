"""A session's attributes compressed with lz4 instead of PostgreSQL's default pglz (PostgreSQL only).

Integration API writers often add an attribute per call, so attributes grow past the 2 kB at which
PostgreSQL compresses a value, and every update of the session compresses them again while its row
is locked. lz4 does that several times faster for a similar size. On the session update benchmark
(50 clients on 10 sessions whose attributes reach about 9 kB) PostgreSQL's CPU per update went from
0.69-0.73 ms to 0.63-0.65 ms. A server built without lz4 keeps pglz; values already stored keep their
compression until rewritten.
"""

from django.db import migrations

from patronage.core.migration_ops import PostgreSQLOnly

COMPRESSION = """
DO $$
BEGIN
    ALTER TABLE customer_sessions_customersession ALTER COLUMN attributes SET COMPRESSION {method};
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
    RAISE NOTICE 'lz4 is not available on this server: session attributes stay compressed with pglz';
END $$;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("customer_sessions", "0003_redundant_fk_indexes"),
    ]

    operations = [
        PostgreSQLOnly(COMPRESSION.format(method="lz4"), reverse_sql=COMPRESSION.format(method="default")),
    ]
