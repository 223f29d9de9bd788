"""The operations users ask for (connections, sources, dead letters, messages, playbooks), with
their rules, built once by `app.py` and called by the dashboard, the management API and the CLI.

The web layer parses requests and renders answers; everything it changes or looks up goes
through these services, so every door refuses the same things with the same words.
"""
