"""Code that the identity, session and gateway services share.

Only transport-level pieces live here: settings, logging, the event
envelope and bus, the internal HTTP client and the operations endpoints.
Domain logic stays inside each service.
"""
