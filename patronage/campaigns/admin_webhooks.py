"""Webhooks and their delivery log: registered by admin.py."""
