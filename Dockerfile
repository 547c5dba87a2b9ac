# CPU serving image. The first stage builds the demo bundle with the training extras (PyTorch);
# the runtime stage installs only the serving dependencies (no PyTorch) and copies the bundle in.
# Mount another bundle root at /app/bundles (with a CURRENT file) to serve your own model.
FROM python:3.11-slim AS demo-bundle
WORKDIR /src
RUN apt-get update && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY service service
COPY kernels kernels
COPY offline offline
COPY model_export model_export
COPY cli cli
COPY loadtest loadtest
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu "torch>=2.4,<3" \
    && pip install --no-cache-dir ".[cpu,train]"
RUN reaseq demo --bundles /out/bundles --data /out/var/demo

FROM python:3.11-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    REASEQ_HOST=0.0.0.0 REASEQ_PORT=8000 \
    REASEQ_BUNDLE_ROOT=/app/bundles REASEQ_EMBEDDED_USERS_PATH=/app/var/demo/users.npz
WORKDIR /app
COPY pyproject.toml README.md ./
COPY service service
COPY kernels kernels
COPY offline offline
COPY model_export model_export
COPY cli cli
COPY loadtest loadtest
RUN pip install --no-cache-dir ".[cpu]" && useradd --system --uid 10001 reaseq
COPY --from=demo-bundle /out/bundles /app/bundles
COPY --from=demo-bundle /out/var /app/var
USER reaseq
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=2s --start-period=20s \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/livez').status != 200)"
CMD ["reaseq", "serve"]
