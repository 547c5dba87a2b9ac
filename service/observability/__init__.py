"""What the service tells operators: structured logs, Prometheus metrics, traces, the ranking
pipeline's observer, GPU memory."""
