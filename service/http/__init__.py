"""The HTTP edge: connections (a cap, a header timeout), middleware, guards (API keys, body
limits, admission, CORS), request and response bodies, and the mapping of domain errors to HTTP
answers."""
