"""The HTTP service: app factory, OpenAI routes, web page, metrics, middleware."""
