"""One spelling per address: the one stored, looked up, rate-limited, suppressed and mailed."""

import idna


def email_normalize(email: str) -> str:
    """Trimmed, lower-cased, with an internationalised domain in its ASCII (punycode) form.

    bücher.example and xn--bcher-kva.example are one domain: kept in both spellings they
    would be two subscribers, past the unique constraint. The ASCII form is what Django's
    mail sends as is (sanitize_address only re-encodes a non-ASCII domain, with the older
    IDNA 2003 rules), so it is the address actually mailed. Text IDNA cannot encode is left
    as typed: refusing it is the form's job (email_is_sendable), and this also runs on
    webhook input and model saves.
    """
    email = email.strip().lower()
    local, at, domain = email.rpartition("@")
    if not at or domain.isascii():
        return email
    try:
        return f"{local}@{domain_to_ascii(domain)}"
    except UnicodeError:
        return email


def domain_to_ascii(domain: str) -> str:
    """IDNA 2008 with UTS-46 mapping, as browsers and mail providers do.

    Not Python's "idna" codec (IDNA 2003): it maps ß to "ss", so straße.example would become
    strasse.example, somebody else's domain. Raises UnicodeError (idna.IDNAError is one)
    for a label IDNA cannot encode: too long once punycoded, mixed scripts or directions.
    """
    return idna.encode(domain, uts46=True, transitional=False).decode("ascii")


def email_is_sendable(email: str) -> bool:
    """Whether the address is all ASCII once normalised: what SMTP and the ESPs accept, and what
    Django then sends without re-encoding. A stored address that is not cannot be mailed at all."""
    return email_normalize(email).isascii()


def domain_is_mailable(email: str) -> bool:
    """Whether the domain is a dotted name: not "localhost", an intranet host or an [address].

    Django's validator allows those; nobody reading a public digest is reached at them, and a
    confirmation sent there goes to a machine of ours or our provider's, not to a person.
    """
    domain = email.rpartition("@")[2]
    return "." in domain.strip(".") and not domain.startswith("[")
