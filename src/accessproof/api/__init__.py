"""The server's REST API and webhooks (FastAPI): ``create_app(store_url)`` in ``app``; roles in ``auth``."""
