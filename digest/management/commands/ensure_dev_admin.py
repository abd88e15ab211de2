from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Create (or reset) the local admin login for `make run` and print it. Development only."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--password", default="paperboy")

    def handle(self, *args, username, password, **options):
        if settings.PRODUCTION:
            raise CommandError("ensure_dev_admin is for development; use createsuperuser in production")
        User = get_user_model()
        user, _ = User.objects.get_or_create(username=username, defaults={"email": "admin@localhost"})
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        self.stdout.write(
            f"Admin: {settings.SITE_URL}/admin/  username: {username}  password: {password}"
        )
