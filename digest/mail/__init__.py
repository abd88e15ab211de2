"""Outgoing mail plumbing: a faster MIME serializer and the SMTP backend that uses it."""
