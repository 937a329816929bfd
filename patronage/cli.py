"""``patronage``: every manage.py command plus our own verbs (apikey, demo, run, serve, worker,
import, export)."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "patronage.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
