"""One spelling per address: the one stored, looked up, rate-limited, suppressed and mailed."""

from django.utils.encoding import punycode


def email_normalize(email: str) -> str:
    """Trimmed, lower-cased, with an internationalised domain in its ASCII (punycode) form.

    bücher.example and xn--bcher-kva.example are one domain: kept in both spellings they
    would be two subscribers, past the unique constraint. The ASCII form is what Django's
    mail writes on the envelope (sanitize_address uses the same punycode()), so it is the
    address actually mailed. Text IDNA cannot encode is left as typed: refusing it is the
    form's job, and this also runs on webhook input and model saves.
    """
    email = email.strip().lower()
    local, at, domain = email.rpartition("@")
    if not at or domain.isascii():
        return email
    try:
        return f"{local}@{punycode(domain)}"
    except UnicodeError:
        return email


def domain_is_mailable(email: str) -> bool:
    """Whether the domain is a dotted name: not "localhost", an intranet host or an [address].

    Django's validator allows those; nobody reading a public digest is reached at them, and a
    confirmation sent there goes to a machine of ours or our provider's, not to a person.
    """
    domain = email.rpartition("@")[2]
    return "." in domain.strip(".") and not domain.startswith("[")
