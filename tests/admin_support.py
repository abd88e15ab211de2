"""Fixtures for the admin tests: a curator, an operator, logged-in clients."""

import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse

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


def subscriber_form_data(client, subscriber, **changes) -> dict:
    """What the subscriber's change page (the add page for None) posts as it stands, with `changes`."""
    if subscriber is None:
        url = reverse("admin:subscriptions_subscriber_add")
    else:
        url = reverse("admin:subscriptions_subscriber_change", args=[subscriber.pk])
    context = client.get(url).context
    form = context["adminform"].form
    data = {name: form[name].value() for name in form.fields}
    data = {k: ("" if v is None else v) for k, v in data.items()}
    for formset in context["inline_admin_formsets"]:
        management = formset.formset.management_form
        data.update({management.add_prefix(k): management[k].value() for k in management.fields})
    return {**data, **changes}
