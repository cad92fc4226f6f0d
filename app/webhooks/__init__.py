"""Outgoing webhooks: subscriptions, the outbox and its deliveries."""
