#!/usr/bin/env python
"""Django's command-line utility for the frontend service (runserver in development).

gunicorn (gunicorn.conf.py) runs the container; this file only runs in development."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "frontend_site.settings")
    # Its backend in development is the one `python manage.py runserver` started in backend_site/.
    os.environ.setdefault("BACKEND_URL", "http://127.0.0.1:5000")
    from django.core.management import execute_from_command_line
    from django.core.management.commands import runserver

    # `python manage.py runserver` serves on the port the container uses (8080), not Django's 8000.
    runserver.Command.default_port = "8080"

    execute_from_command_line(sys.argv)
