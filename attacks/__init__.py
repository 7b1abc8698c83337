"""Attacks on unlearned models; importing this package registers the built-ins."""

from attacks.mia import svc  # noqa: F401
