"""Campaigns, evaluation tree, Try it: registered by admin.py."""
