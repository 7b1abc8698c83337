"""Membership-inference attacks; every one reads stored observations (logits)."""
