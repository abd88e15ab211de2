"""Fixtures for the admin tests: a curator, an operator, logged-in clients."""

import pytest
from django.contrib.auth.models import Group, User

PASSWORD = "correct horse battery staple"


def make_staff(username: str, group: str) -> User:
    user = User.objects.create_user(username, f"{username}@paperboy.test", PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def curator(db):
    return make_staff("curator", "curators")


@pytest.fixture
def operator(db):
    return make_staff("operator", "operators")


@pytest.fixture
def curator_client(client, curator):
    client.force_login(curator)
    return client


@pytest.fixture
def operator_client(client, operator):
    client.force_login(operator)
    return client
