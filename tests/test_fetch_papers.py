"""fetch_papers against a real HTTP server on loopback serving recorded responses."""

import datetime
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from digest.models import Paper, TrendingEntry
from digest.tasks.fetch import fetch_papers_task

pytestmark = pytest.mark.django_db

DATA = Path(__file__).parent / "data"
HF_BODY = (DATA / "hf_daily_papers_2024-03-12.json").read_bytes()
ARXIV_BODY = (DATA / "arxiv_query.atom.xml").read_bytes()


class Server:
    """Answers each GET with the next scripted (status, headers, body); the last one repeats."""

    def __init__(self):
        self.script: list[tuple[int, dict, bytes]] = []
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                index = min(len(server.requests), len(server.script)) - 1
                status, headers, body = server.script[index]
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def query(self, index: int = -1) -> dict:
        return urllib.parse.parse_qs(urllib.parse.urlsplit(self.requests[index]).query)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(settings):
    server = Server()
    settings.HF_DAILY_PAPERS_URL = f"{server.url}/api/daily_papers"
    settings.ARXIV_API_URL = f"{server.url}/api/query"
    settings.FETCH_RETRIES = 3
    settings.FETCH_BACKOFF_BASE = 0.01
    settings.FETCH_RETRY_AFTER_MAX = 0.2
    settings.FETCH_TIMEOUT = 5
    yield server
    server.stop()


def fetch(*args) -> str:
    out = StringIO()
    call_command("fetch_papers", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_hf_daily_papers_for_a_day_are_fetched_and_imported(server):
    server.script = [(200, {"Content-Type": "application/json"}, HF_BODY)]
    out = fetch("--source", "hf", "--date", "2024-03-12")
    assert "hf: 4 new, 0 updated, 0 unchanged" in out
    assert server.requests[0].startswith("/api/daily_papers?")
    assert server.query() == {"date": ["2024-03-12"]}
    assert Paper.objects.count() == 4
    assert set(TrendingEntry.objects.values_list("date", flat=True)) == {datetime.date(2024, 3, 12)}


def test_arxiv_is_queried_by_category_and_day(server):
    server.script = [(200, {"Content-Type": "application/atom+xml"}, ARXIV_BODY)]
    out = fetch("--source", "arxiv", "--category", "cs.LG", "--category", "hep-th", "--date", "2024-03-12")
    assert "arxiv: 3 new" in out
    query = server.query()
    assert query["search_query"] == ["(cat:cs.LG OR cat:hep-th) AND submittedDate:[202403120000 TO 202403122359]"]
    assert query["sortBy"] == ["submittedDate"]
    assert set(Paper.objects.values_list("arxiv_id", flat=True)) == {"2301.06719", "2308.04430", "hep-th/9901001"}


def test_a_429_is_retried_after_the_servers_delay_and_then_succeeds(server):
    server.script = [
        (429, {"Retry-After": "0.05"}, b"slow down"),
        (503, {}, b"busy"),
        (200, {"Content-Type": "application/json"}, HF_BODY),
    ]
    out = fetch("--source", "hf")
    assert len(server.requests) == 3
    assert "4 new" in out


def test_a_server_error_that_never_ends_gives_up_with_a_clear_error_and_imports_nothing(server):
    server.script = [(500, {}, b"Internal Server Error")]
    with pytest.raises(CommandError) as caught:
        fetch("--source", "hf")
    message = str(caught.value)
    assert f"{server.url}/api/daily_papers" in message
    assert "HTTP 500" in message and "gave up after 4 attempts" in message
    assert len(server.requests) == 4  # FETCH_RETRIES = 3 retries after the first try
    assert Paper.objects.count() == 0


def test_a_client_error_is_not_retried(server):
    server.script = [(404, {}, b"Not Found")]
    with pytest.raises(CommandError, match=r"/api/query.*HTTP 404 Not Found"):
        fetch("--source", "arxiv")
    assert len(server.requests) == 1


def test_a_malformed_body_is_refused_and_imports_nothing(server):
    server.script = [(200, {"Content-Type": "application/json"}, HF_BODY[: len(HF_BODY) // 2])]
    with pytest.raises(CommandError, match=r"malformed response: GET .*/api/daily_papers: line \d+: not valid JSON"):
        fetch("--source", "hf")
    server.script = [(200, {"Content-Type": "text/html"}, b"<html><body>Rate limited</body></html>")]
    with pytest.raises(CommandError, match="not an Atom feed"):
        fetch("--source", "arxiv")
    assert Paper.objects.count() == 0


def test_an_unreachable_server_is_retried_then_reported(settings):
    settings.HF_DAILY_PAPERS_URL = "http://127.0.0.1:9/api/daily_papers"  # discard port: nothing listens
    settings.FETCH_RETRIES = 1
    settings.FETCH_BACKOFF_BASE = 0.01
    with pytest.raises(CommandError, match=r"127\.0\.0\.1:9/api/daily_papers: ConnectError.*gave up after 2 attempts"):
        fetch("--source", "hf")


@pytest.mark.parametrize("category", ["cs.LG OR 1=1", "foo", "foo.LG", "CS.LG", "cs.FOO", "hep-th.LG", "physics.LG"])
def test_a_bad_category_is_refused_before_any_request(server, category):
    with pytest.raises(CommandError, match="not an arXiv category"):
        fetch("--source", "arxiv", "--category", category)
    assert server.requests == []


def test_the_scheduled_task_fetches_the_same_way_and_twice_changes_nothing(server):
    server.script = [(200, {"Content-Type": "application/json"}, HF_BODY)]
    assert fetch_papers_task(source="hf", date="2024-03-12") == {"new": 4, "updated": 0, "unchanged": 0}
    assert fetch_papers_task(source="hf", date="2024-03-12") == {"new": 0, "updated": 0, "unchanged": 4}
    assert fetch_papers_task.name == "digest.tasks.fetch_papers_task"
