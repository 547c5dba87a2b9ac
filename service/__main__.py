"""``python -m service``: serve with settings from the environment (``REASEQ_*``).

A setting the service refuses ends it before anything starts, with one ``error: …`` line per
variable on stderr and exit status 2, as ``reaseq serve`` does.
"""

import sys

from service.threads import limit_blas_threads

limit_blas_threads()

from pydantic import ValidationError  # noqa: E402

from service.app import serve  # noqa: E402
from service.settings import Settings, get_settings  # noqa: E402
from service.settings_errors import MISTAKE_EXIT, setting_error_lines  # noqa: E402


def main() -> None:
    try:
        settings = get_settings()
    except ValidationError as error:
        for line in setting_error_lines(error, Settings):
            print(f"error: {line}", file=sys.stderr)
        raise SystemExit(MISTAKE_EXIT) from None
    serve(settings)


if __name__ == "__main__":
    main()
