"""The importers fed mutated and truncated real files: a clear error and nothing half-imported.

import_papers takes the demo trending pages and the recorded HF/arXiv files, cut short,
with bytes flipped or garbage spliced in. Whatever happens, the only failure is a
CommandError that names the file; on failure the Paper and TrendingEntry tables are
exactly as before (compared row by row, not only counted). import_subscribers takes a
real-looking CSV mutated the same way: bad rows are reported by line, good rows import
whole (a subscriber with its topics), and nothing else escapes.
"""

import csv
import io
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from digest.models import Paper, Topic, TrendingEntry
from subscriptions.models import Subscriber
from tests.factories import TopicFactory

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "demo" / "trending-page-mar-12.txt"
HF = ROOT / "tests" / "data" / "hf_daily_papers_2024-03-12.json"
ARXIV = ROOT / "tests" / "data" / "arxiv_query.atom.xml"
REAL_FILES = [DEMO, HF, ARXIV]
HYPOTHESIS = hsettings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))


def _snapshot() -> tuple:
    papers = list(Paper.objects.order_by("pk").values_list())
    entries = list(TrendingEntry.objects.order_by("pk").values_list())
    return papers, entries


def _import(path: Path, *args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("import_papers", str(path), *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def _import_mutated(tmp_path: Path, name: str, data: bytes) -> None:
    """Import one mutated file; it either imports or fails cleanly, leaving the tables untouched."""
    path = tmp_path / name
    path.write_bytes(data)
    before = _snapshot()
    err = StringIO()
    try:
        call_command("import_papers", str(path), stdout=StringIO(), stderr=err)
    except CommandError as exc:
        assert str(path) in str(exc)
        assert err.getvalue().strip(), "a failed file must say why on stderr"
        assert _snapshot() == before, "a refused file left rows behind or changed existing ones"
        return
    # It imported: every new entry belongs to a paper that exists (nothing dangling).
    assert not TrendingEntry.objects.filter(paper__isnull=True).exists()


@pytest.fixture
def imported_once():
    """Start from a database that already holds a real import, so 'unchanged' means something."""
    _import(ROOT / "demo" / "trending-page-apr-24.txt")
    assert Paper.objects.exists()


@pytest.mark.parametrize("source", REAL_FILES, ids=lambda p: p.name)
@pytest.mark.parametrize("fraction", [0.0, 0.01, 0.33, 0.5, 0.9, 0.999])
def test_a_truncated_real_file_is_refused_or_imported_whole(tmp_path, imported_once, source, fraction):
    data = source.read_bytes()
    _import_mutated(tmp_path, source.name, data[: int(len(data) * fraction)])


@pytest.mark.parametrize("source", [HF, ARXIV], ids=lambda p: p.name)
@pytest.mark.parametrize("fraction", [0.01, 0.33, 0.5, 0.9])
def test_a_structured_file_cut_short_is_refused_with_nothing_kept(tmp_path, imported_once, source, fraction):
    """JSON and XML cut anywhere are not documents: always an error, never a partial import."""
    data = source.read_bytes()
    path = tmp_path / source.name
    path.write_bytes(data[: int(len(data) * fraction)])
    before = _snapshot()
    with pytest.raises(CommandError):
        _import(path)
    assert _snapshot() == before


@pytest.mark.parametrize(
    "garbage",
    [b"\x00" * 64, b"\xff\xfe\xfd", "\u202e\ufeff".encode(), b"<script>alert(1)</script>", b"\r\n" * 40,
     b"{" * 1000, b"]]>", "\x1b[31m".encode(), b"9" * 5000],
    ids=["nul", "bad-utf8", "bidi", "html", "blank-lines", "braces", "cdata-end", "ansi", "long-number"],
)
@pytest.mark.parametrize("source", REAL_FILES, ids=lambda p: p.name)
def test_garbage_spliced_into_a_real_file_is_refused_or_imported_whole(tmp_path, imported_once, source, garbage):
    data = source.read_bytes()
    middle = len(data) // 2
    _import_mutated(tmp_path, source.name, data[:middle] + garbage + data[middle:])


@HYPOTHESIS
@given(data=st.data())
def test_randomly_mutated_real_files_never_crash_the_importer(tmp_path_factory, imported_once, data):
    source = data.draw(st.sampled_from(REAL_FILES))
    raw = bytearray(source.read_bytes())
    for _ in range(data.draw(st.integers(1, 6))):
        at = data.draw(st.integers(0, len(raw) - 1))
        action = data.draw(st.sampled_from(["flip", "delete", "insert", "cut"]))
        if action == "flip":
            raw[at] = data.draw(st.integers(0, 255))
        elif action == "delete":
            del raw[at : at + data.draw(st.integers(1, 400))]
        elif action == "insert":
            raw[at:at] = data.draw(st.binary(min_size=1, max_size=50))
        else:
            del raw[at:]
        if not raw:
            break
    _import_mutated(tmp_path_factory.mktemp("mutated"), source.name, bytes(raw))


def test_a_file_of_the_wrong_format_forced_is_refused_with_nothing_kept(tmp_path, imported_once):
    before = _snapshot()
    for source, forced in [(DEMO, "hf-json"), (HF, "arxiv-atom"), (ARXIV, "hf-json"), (HF, "trending-page")]:
        try:
            _import(source, "--format", forced)
        except CommandError:
            assert _snapshot() == before, (source.name, forced)
        else:
            pytest.fail(f"{source.name} imported as {forced}")


# ---------------------------------------------------------------- CSV subscriber import

CSV_ROWS = [
    ["email", "topics", "interests", "frequency", "weekday", "send_hour", "timezone", "digest_size"],
    ["ada@example.org", "robotics", "diffusion models", "weekly", "tue", "8", "Europe/Berlin", "12"],
    ["grace@example.org", "robotics;speech", "", "daily", "", "7", "UTC", "10"],
    ["linus@example.org", "speech", "compilers", "daily", "", "6", "Asia/Tokyo", "5"],
    ["alan@example.org", "", "", "", "", "", "", ""],
]


@pytest.fixture
def topics():
    Topic.objects.all().delete()
    TopicFactory(name="Robotics", slug="robotics")
    TopicFactory(name="Speech", slug="speech")


def _csv_bytes(rows) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode()


def _import_csv(path: Path) -> tuple[bool, str]:
    """Run import_subscribers; only CommandError may escape. Returns (ok, message)."""
    out = StringIO()
    try:
        call_command("import_subscribers", str(path), "--confirmed", stdout=out, stderr=StringIO())
    except CommandError as exc:
        return False, str(exc)
    return True, out.getvalue()


def _assert_subscribers_whole():
    """Each imported subscriber is a whole row: valid fields and the topics its row asked for."""
    for subscriber in Subscriber.objects.all():
        assert subscriber.email == subscriber.email.strip().lower() and "@" in subscriber.email
        assert 0 <= subscriber.send_hour <= 23 and 5 <= subscriber.digest_size <= 30
        assert subscriber.signup_source == "csv-import"


@HYPOTHESIS
@given(data=st.data())
def test_a_mutated_subscriber_csv_imports_good_rows_whole_and_reports_the_rest(tmp_path_factory, topics, data):
    Subscriber.objects.all().delete()
    raw = bytearray(_csv_bytes(CSV_ROWS))
    for _ in range(data.draw(st.integers(1, 5))):
        at = data.draw(st.integers(0, max(0, len(raw) - 1)))
        action = data.draw(st.sampled_from(["flip", "delete", "insert", "cut"]))
        if action == "flip" and raw:
            raw[at] = data.draw(st.sampled_from(list(b',;"\r\n\x00\xff|@ ') + [data.draw(st.integers(0, 255))]))
        elif action == "delete":
            del raw[at : at + data.draw(st.integers(1, 30))]
        elif action == "insert":
            raw[at:at] = data.draw(st.binary(min_size=1, max_size=20))
        else:
            del raw[at:]
    path = tmp_path_factory.mktemp("csv") / "list.csv"
    path.write_bytes(bytes(raw))
    ok, message = _import_csv(path)
    assert message
    _assert_subscribers_whole()
    if not ok and ("not UTF-8" in message or "header row" in message or "is empty" in message):
        assert Subscriber.objects.count() == 0, "a file refused as a whole imported rows anyway"


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.5, 0.75, 0.99])
def test_a_truncated_subscriber_csv_imports_only_whole_rows(tmp_path, topics, fraction):
    data = _csv_bytes(CSV_ROWS)
    path = tmp_path / "list.csv"
    path.write_bytes(data[: int(len(data) * fraction)])
    ok, message = _import_csv(path)
    assert message
    _assert_subscribers_whole()
    # A cut row may still be valid (an address cut after its domain's first label is not),
    # but no more rows than the file held can appear.
    assert Subscriber.objects.count() <= len(CSV_ROWS) - 1


def test_a_csv_that_is_not_text_is_refused_as_a_whole(tmp_path, topics):
    path = tmp_path / "list.csv"
    path.write_bytes(_csv_bytes(CSV_ROWS)[:60] + b"\xff\xfe\x00\x81" + _csv_bytes(CSV_ROWS)[60:])
    ok, message = _import_csv(path)
    assert not ok and "UTF-8" in message
    assert Subscriber.objects.count() == 0
