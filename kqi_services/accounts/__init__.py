"""Accounts: users, tenants, memberships and roles (``users``), API and run tokens (``tokens``),
password hashing (``passwords``), the failed-login lockout (``lockout``) and secrets at rest (``secretbox``)."""
