#!/usr/bin/env python
"""Django's command-line utility for the backend service (runserver in development).

gunicorn (gunicorn.conf.py) runs the container; this file only runs in development."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend_site.settings")
    from django.core.management import execute_from_command_line
    from django.core.management.commands import runserver

    # `python manage.py runserver` serves on the port the container uses (5000), not Django's 8000.
    runserver.Command.default_port = "5000"

    execute_from_command_line(sys.argv)
