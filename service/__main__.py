"""``python -m service``: serve with settings from the environment (``REASEQ_*``)."""

from service.threads import limit_blas_threads

limit_blas_threads()

from service.app import serve  # noqa: E402

if __name__ == "__main__":
    serve()
