"""A module that prints its workflow's default name (run with ``python -m``)."""

from durable import workflow


@workflow
async def nightly_report() -> None:
    """Does nothing: only its name matters."""


if __name__ == "__main__":
    print(nightly_report.name)
