"""Celery tasks: thin adapters that load by id and call one service.

One module per area; autodiscovery imports this package, which imports them all.
"""

from .fetch import *  # noqa: F401,F403
from .classify import *  # noqa: F401,F403
from .sending import *  # noqa: F401,F403
from .subscribers import *  # noqa: F401,F403
