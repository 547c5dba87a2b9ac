"""The HTTP edge: middleware, guards (body limits, admission, CORS), API keys, request and
response bodies, and the mapping of domain errors to HTTP answers."""
