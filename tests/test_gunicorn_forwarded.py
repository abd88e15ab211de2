"""The web process's gunicorn makes a request https exactly where Django would: on the
X-Forwarded-Proto of a proxy the operator declared (TRUST_X_FORWARDED_PROTO), on no other
header, and never on a visitor's word. Run against a real gunicorn started from gunicorn.conf.py."""

import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

import pytest
from django.conf import settings

from tests.conftest import _free_port
from tests.gunicorn_support import gunicorn, request
from tests.test_security import _BEHIND_PROXY, PRODUCTION_ENV

NO_PROXY = {}  # production as the README starts it, the app reached directly
TRUST_OFF = {**_BEHIND_PROXY, "TRUST_X_FORWARDED_PROTO": "off"}  # a proxy that does not set the header
TRUST_ON = {"TRUST_X_FORWARDED_PROTO": "true"}  # a TLS proxy whose address header is left unset
CONFIGURATIONS = {"no proxy": NO_PROXY, "trust off": TRUST_OFF, "behind a proxy": _BEHIND_PROXY, "trust on": TRUST_ON}
# gunicorn's own default trusts 127.0.0.1 (and ::1); 127.0.0.2 stands for a proxy on another address.
PEERS = ["127.0.0.1", "127.0.0.2"]


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    """name -> port of a gunicorn running with that configuration; each started once for the module."""
    ports = {}
    with ExitStack() as stack:
        for name, env in CONFIGURATIONS.items():
            port = _free_port()
            log = tmp_path_factory.mktemp("gunicorn") / f"{name.replace(' ', '-')}.log"
            stack.enter_context(gunicorn({**PRODUCTION_ENV, **env}, port=port, log=log))
            ports[name] = port
        yield ports


@pytest.mark.parametrize("peer", PEERS)
@pytest.mark.parametrize("configuration", ["no proxy", "trust off"])
def test_without_a_trusted_proxy_no_request_is_https_whatever_it_claims(web, configuration, peer):
    claims = {"X-Forwarded-Proto": "https", "X-Forwarded-Ssl": "on", "X-Forwarded-Protocol": "ssl"}
    for name, value in claims.items():
        assert request(web[configuration], "/", {name: value}, peer=peer) == "http False -", name


@pytest.mark.parametrize("peer", PEERS)
@pytest.mark.parametrize("configuration", ["behind a proxy", "trust on"])
def test_behind_a_trusted_proxy_gunicorn_and_django_both_believe_its_x_forwarded_proto(web, configuration, peer):
    port = web[configuration]
    assert request(port, "/", {"X-Forwarded-Proto": "https"}, peer=peer) == "https True -"
    assert request(port, "/", {"X-Forwarded-Proto": "http"}, peer=peer) == "http False -"
    assert request(port, "/", peer=peer) == "http False -"


@pytest.mark.parametrize("configuration", ["behind a proxy", "trust on"])
def test_behind_a_trusted_proxy_no_other_scheme_header_counts(web, configuration):
    # Django reads X-Forwarded-Proto only; a visitor's X-Forwarded-Ssl passed along by the proxy is theirs.
    port = web[configuration]
    assert request(port, "/", {"X-Forwarded-Ssl": "on"}) == "http False -"
    assert request(port, "/", {"X-Forwarded-Protocol": "ssl"}) == "http False -"
    # gunicorn answers 400 where two scheme headers it reads disagree; only one is read.
    assert request(port, "/", {"X-Forwarded-Proto": "https", "X-Forwarded-Ssl": "off"}) == "https True -"


@pytest.mark.parametrize("configuration", CONFIGURATIONS)
def test_no_request_sets_the_script_name(web, configuration):
    assert request(web[configuration], "/elsewhere/page", {"SCRIPT_NAME": "/elsewhere"}) == "http False -"


def test_the_web_process_refuses_a_bad_proxy_setting_in_one_line():
    web = next(line for line in (settings.BASE_DIR / "Procfile").read_text().splitlines() if line.startswith("web:"))
    result = subprocess.run(
        ["sh", "-c", web.removeprefix("web:")],
        env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", **PRODUCTION_ENV, **_BEHIND_PROXY, "TRUSTED_PROXY_COUNT": "two"},
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert result.stderr == "gunicorn.conf.py: Setting TRUSTED_PROXY_COUNT: cannot read 'two' as a whole number\n"
