"""``python -m durable``: the ``durable`` command line (see ``durable.cli``)."""

from durable.cli import main

raise SystemExit(main())
