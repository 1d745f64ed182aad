"""Payment sync from QuickBooks to ConnectWise (SPEC 10): allocation rules, reads, the
per-invoice writes, runs and webhooks."""
