"""Attacks on unlearned models; importing this package registers the built-ins."""

from attacks.mia import lira, rmia, svc, threshold, ulira  # noqa: F401
