"""Logs never hold a working link: the token of a confirm/manage/unsubscribe URL is masked."""

import datetime
import importlib.util
import logging
from types import SimpleNamespace

import pytest
from django.conf import settings
from gunicorn.config import Config

from digest.log_filters import TokenMaskFilter, mask_tokens
from subscriptions.links import manage_url
from tests.factories import SubscriberFactory

TOKEN = "eyJzIjo0Mn0:1vQxYz:s1gnature-AbC_dEf"


def _path(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def _gunicorn_logger(access_log):
    # The logger_class the web process runs, exactly as gunicorn builds it from gunicorn.conf.py.
    spec = importlib.util.spec_from_file_location("gunicorn_conf", settings.BASE_DIR / "gunicorn.conf.py")
    conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conf)
    cfg = Config()
    cfg.set("logger_class", getattr(conf, "logger_class", "gunicorn.glogging.Logger"))
    cfg.set("accesslog", str(access_log))
    return cfg.logger_class(cfg)


def _gunicorn_request(path, referer):
    environ = {"REQUEST_METHOD": "GET", "RAW_URI": path, "PATH_INFO": path.split("?")[0], "QUERY_STRING": "",
               "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "203.0.113.9", "HTTP_REFERER": referer,
               "HTTP_USER_AGENT": "Mail/1.0"}
    req = SimpleNamespace(headers=[("REFERER", referer), ("USER-AGENT", "Mail/1.0")])
    resp = SimpleNamespace(status="200 OK", sent=512, headers=[("Content-Type", "text/html")])
    return resp, req, environ


@pytest.mark.django_db
def test_a_bad_manage_post_is_logged_without_its_token(client, caplog):
    subscriber = SubscriberFactory()
    url = _path(manage_url(subscriber))
    token = url.split("/")[2]
    with caplog.at_level(logging.WARNING, logger="django.request"):
        response = client.post(url, {"digest_size": "99"})
    assert response.status_code == 400
    [record] = [r for r in caplog.records if r.name == "django.request"]
    assert record.getMessage() == "Bad Request: /manage/…/"
    assert token not in caplog.text


def test_runserver_request_lines_are_logged_without_tokens(caplog):
    server = logging.getLogger("django.server")  # it does not propagate: listen on it directly
    server.addHandler(caplog.handler)
    try:
        server.info('"%s" %s %s', f"GET /unsubscribe/{TOKEN}/confirm/ HTTP/1.1", "302", "0")
    finally:
        server.removeHandler(caplog.handler)
    assert caplog.records[-1].getMessage() == '"GET /unsubscribe/…/confirm/ HTTP/1.1" 302 0'


def test_the_gunicorn_access_log_masks_the_request_line_path_and_referer(tmp_path):
    access_log = tmp_path / "access.log"
    logger = _gunicorn_logger(access_log)
    logger.cfg.set("access_log_format", '"%(r)s" %(U)s "%(f)s" %({referer}i)s %({raw_uri}e)s %(s)s "%(a)s"')
    resp, req, environ = _gunicorn_request(f"/manage/{TOKEN}/pause/", f"https://paperboy.example.org/manage/{TOKEN}/")
    logger.access(resp, req, environ, datetime.timedelta(milliseconds=12))
    logger.access(*_gunicorn_request("/digest/2026-12-01/", "https://paperboy.example.org/link/"),
                  datetime.timedelta(milliseconds=3))
    for handler in logger.access_log.handlers:
        handler.flush()
    lines = access_log.read_text().splitlines()
    assert lines == [
        '"GET /manage/…/pause/ HTTP/1.1" /manage/…/pause/ "https://paperboy.example.org/manage/…/" '
        'https://paperboy.example.org/manage/…/ /manage/…/pause/ 200 "Mail/1.0"',
        '"GET /digest/2026-12-01/ HTTP/1.1" /digest/2026-12-01/ "https://paperboy.example.org/link/" '
        'https://paperboy.example.org/link/ /digest/2026-12-01/ 200 "Mail/1.0"',
    ]
    assert TOKEN not in access_log.read_text()


def test_the_filter_masks_gunicorn_atoms_in_place_and_keeps_missing_atoms_as_a_dash():
    from gunicorn.glogging import Logger, SafeAtoms

    logger = Logger(Config())
    resp, req, environ = _gunicorn_request(f"/confirm/{TOKEN}/?utm=x", "-")
    atoms = SafeAtoms(logger.atoms(resp, req, environ, datetime.timedelta(seconds=1)))
    # As gunicorn.glogging.Logger.access logs it: one mapping argument becomes record.args.
    record = logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1, "%(r)s %(U)s %(x)s", (atoms,), None)
    assert TokenMaskFilter().filter(record) is True
    assert record.args is atoms
    assert record.getMessage() == "GET /confirm/…/?utm=x HTTP/1.1 /confirm/…/ -"


@pytest.mark.parametrize(
    "text",
    ["/link/", "/manage/", "/unsubscribe/", "/digest/2026-12-01/", "/admin/subscriptions/subscriber/7/change/",
     "/static/manage/app.js", "GET /feed/ HTTP/1.1", "https://paperboy.example.org/"],
)
def test_other_paths_are_left_alone(text):
    assert mask_tokens(text) == text


@pytest.mark.parametrize(
    "text, masked",
    [
        (f"/confirm/{TOKEN}/", "/confirm/…/"),
        (f"/manage/{TOKEN}/new-link/", "/manage/…/new-link/"),
        (f"/unsubscribe/{TOKEN}", "/unsubscribe/…"),
        (f"Forbidden (CSRF token missing.): /unsubscribe/{TOKEN}/confirm/", "Forbidden (CSRF token missing.): /unsubscribe/…/confirm/"),
        (f"http://127.0.0.1:8000/manage/{TOKEN}/?saved=1", "http://127.0.0.1:8000/manage/…/?saved=1"),
    ],
)
def test_each_token_route_is_masked(text, masked):
    assert mask_tokens(text) == masked
