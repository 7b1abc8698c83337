"""Attacks on unlearned models; importing this package registers the built-in attacks and probes."""

from attacks.mia import lira, rmia, svc, threshold, ulira  # noqa: F401
from attacks import backdoor_probe, dp_probe, relearn_probe  # noqa: F401
from attacks.mia import probe  # noqa: F401
