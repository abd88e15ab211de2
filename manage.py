#!/usr/bin/env python
import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digest.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as error:
        # digest/settings.py names the variable and what is wrong with it: that line is the
        # whole story, and a traceback through Django's settings loader only buries it.
        if not str(error).startswith("Setting "):
            raise
        sys.exit(f"manage.py: {error}")


if __name__ == "__main__":
    main()
