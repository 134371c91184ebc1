"""pi0 / pi0.5-style flow-matching policies (docs/models.md); the policy registers itself in policy.py."""
