"""import_subscribers: good rows import, bad rows are reported by line, suppressed never return, re-runs change nothing."""

import pytest
from django.core.management import CommandError, call_command

from subscriptions.models import Subscriber, Suppression
from digest.models import Topic
from tests.factories import SubscriberFactory, TopicFactory

pytestmark = pytest.mark.django_db

CSV = """email,topics,interests,frequency,send_hour,timezone,digest_size
ada@example.org,robotics;Computer Vision,"diffusion models, video generation",weekly,8,Europe/Berlin,12
GRACE@Example.org ,speech|robotics,,daily,,,
not-an-address,robotics,,daily,7,UTC,10
bob@example.org,astrology,,daily,7,UTC,10
carol@example.org,,,hourly,25,Mars/Base,99
"dave@example.org","robotics","multi
line interests",daily,6,Asia/Tokyo,5
gone@example.org,robotics,,daily,7,UTC,10
eve@example.org,,,,,,
evil@example.org,robotics,"x\rBcc: victim@example.org",daily,7,UTC,10
"""



@pytest.fixture
def csv_file(tmp_path):
    Topic.objects.all().delete()  # the test owns its topic list, not the default-topics migration
    TopicFactory(name="Robotics", slug="robotics")
    TopicFactory(name="Computer Vision", slug="cv")
    TopicFactory(name="Speech", slug="speech")
    Suppression.objects.create(email="gone@example.org", reason="complaint")
    path = tmp_path / "list.csv"
    path.write_text(CSV, encoding="utf-8")
    return path


def _run(path, *args, capsys):
    with pytest.raises(CommandError) as excinfo:
        call_command("import_subscribers", str(path), *args)
    out, err = capsys.readouterr()
    return str(excinfo.value), out, err


def test_good_rows_import_and_bad_rows_are_reported_with_their_line_numbers(
    csv_file, capsys, smtp_sink, eager_tasks, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        message, out, err = _run(csv_file, capsys=capsys)

    assert "6 rows were not imported" in message
    assert "line 4: email:" in err
    assert "line 5: topics: unknown 'astrology'" in err
    assert "line 6:" in err and "frequency" in err and "send_hour" in err and "timezone" in err and "digest_size" in err
    assert "line 11: interests: Line breaks are not allowed here." in err
    # A quoted field spanning lines 7-8 is one row, reported at its first line; its line break is refused.
    assert "line 7: interests: Line breaks are not allowed here." in err and "line 8" not in err
    assert "line 10: topics: the row has no topics and no interests; give at least one" in err
    assert sorted(Subscriber.objects.values_list("email", flat=True)) == ["ada@example.org", "grace@example.org"]
    ada = Subscriber.objects.get(email="ada@example.org")
    assert ada.status == Subscriber.Status.PENDING and ada.signup_source == "csv-import"
    assert sorted(t.slug for t in ada.topics.all()) == ["cv", "robotics"]
    assert (ada.frequency, ada.send_hour, ada.timezone, ada.digest_size) == ("weekly", 8, "Europe/Berlin", 12)
    grace = Subscriber.objects.get(email="grace@example.org")
    assert (grace.send_hour, grace.timezone, grace.digest_size) == (7, "UTC", 10)
    assert not Subscriber.objects.filter(email="gone@example.org").exists()
    assert "skipped 0 already present, 1 suppressed" in out
    for address in ["ada@example.org", "grace@example.org"]:
        [mail] = smtp_sink.to(address)
        assert "Confirm" in mail.subject
        # They did not ask: the operator added them, and the email says so.
        for part in ("text/plain", "text/html"):
            assert "added" in mail.part(part) and "hopefully you" not in mail.part(part)
    assert smtp_sink.to("gone@example.org") == [] and smtp_sink.to("eve@example.org") == []


@pytest.mark.parametrize("interests", ["", ",,,,", '" ; "', "\u200b"])
def test_a_row_with_no_topics_and_no_interests_is_a_bad_row(tmp_path, capsys, interests):
    path = tmp_path / "list.csv"
    path.write_text(f'email,topics,interests\nada@example.org,,"{interests}"\ngrace@example.org,,robot learning\n',
                    encoding="utf-8")
    message, out, err = _run(path, "--confirmed", capsys=capsys)
    assert "1 row was not imported" in message
    assert "line 2: topics: the row has no topics and no interests; give at least one" in err
    assert list(Subscriber.objects.values_list("email", "interests")) == [("grace@example.org", "robot learning")]


def test_confirmed_imports_send_nothing_and_record_the_source(csv_file, capsys, smtp_sink, eager_tasks,
                                                            django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        _run(csv_file, "--confirmed", capsys=capsys)
    ada = Subscriber.objects.get(email="ada@example.org")
    assert ada.status == Subscriber.Status.CONFIRMED and ada.confirmed_at is not None
    assert smtp_sink.messages == []


def test_running_the_import_twice_changes_nothing_and_mails_nobody_twice(
    csv_file, capsys, smtp_sink, eager_tasks, django_capture_on_commit_callbacks
):
    existing = SubscriberFactory(email="grace@example.org", digest_size=20)
    with django_capture_on_commit_callbacks(execute=True):
        _run(csv_file, capsys=capsys)
    first = sorted(Subscriber.objects.values_list("email", "status", "digest_size"))
    mails = len(smtp_sink.messages)
    with django_capture_on_commit_callbacks(execute=True):
        _, out, _ = _run(csv_file, capsys=capsys)
    assert sorted(Subscriber.objects.values_list("email", "status", "digest_size")) == first
    assert len(smtp_sink.messages) == mails
    assert "Imported 0" in out
    existing.refresh_from_db()
    assert existing.digest_size == 20  # an operator's list never overwrites a subscriber's own choices


def test_the_import_spells_addresses_as_the_signup_form_does(tmp_path, capsys):
    SubscriberFactory(email="grace@bücher.example")
    path = tmp_path / "list.csv"
    path.write_text("email,interests\nAda@Bücher.example,robots\nada@xn--bcher-kva.example,robots\n"
                    "Grace@xn--bcher-kva.example,robots\nroot@localhost,robots\n", encoding="utf-8")
    message, out, err = _run(path, "--confirmed", capsys=capsys)
    assert "1 row was not imported" in message
    assert "line 5: email: Enter a valid email address." in err
    assert "Imported 1" in out and "skipped 2 already present" in out
    assert sorted(Subscriber.objects.values_list("email", flat=True)) == ["ada@xn--bcher-kva.example",
                                                                          "grace@xn--bcher-kva.example"]


def test_a_clean_file_exits_successfully(tmp_path, capsys):
    path = tmp_path / "ok.csv"
    path.write_text("email,interests\nx@example.org,robot learning\n", encoding="utf-8")
    call_command("import_subscribers", str(path), "--confirmed")
    assert "Imported 1" in capsys.readouterr().out


@pytest.mark.parametrize(
    "content, words",
    [(b"", "is empty"), (b"name,topics\nx,y\n", "needs an 'email' column"), (b"email\n\xff\xfe\n", "not UTF-8")],
)
def test_unusable_files_are_refused_with_a_clear_message(tmp_path, content, words):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(CommandError, match=words):
        call_command("import_subscribers", str(path))
    assert not Subscriber.objects.exists()


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("import_subscribers", str(tmp_path / "nope.csv"))


def test_help_lists_the_columns_an_operator_can_give(capsys):
    # The help once said "see the module docstring for columns", which an operator cannot see.
    with pytest.raises(SystemExit):
        call_command("import_subscribers", "--help")
    out = capsys.readouterr().out
    assert "docstring" not in out
    for line in ["email (required)", "topics", "interests", "frequency", "weekday", "send_hour", "timezone",
                 "digest_size"]:
        assert f"\n  {line}" in out
    assert "  frequency     daily or weekly (default daily)\n" in out  # one column a line, as written: not rewrapped


def test_the_import_reports_a_row_whose_domain_idna_cannot_encode_and_imports_the_others(tmp_path, capsys):
    path = tmp_path / "list.csv"
    path.write_text("email,interests\nyan@" + "ö" * 61 + ".org,robots\nlea@aא.example,robots\n"
                    "hans@straße.example,robots\n", encoding="utf-8")
    message, out, err = _run(path, "--confirmed", capsys=capsys)
    assert "2 rows were not imported" in message
    assert "line 2: email: The part after the @ is not a domain name" in err
    assert "line 3: email: The part after the @ is not a domain name" in err
    assert list(Subscriber.objects.values_list("email", flat=True)) == ["hans@xn--strae-oqa.example"]
