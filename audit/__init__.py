"""salun: audits machine unlearning against models retrained without the forget set."""

__version__ = "0.1.0"
