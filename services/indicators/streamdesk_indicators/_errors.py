"""Error tuples of this package that the shared taxonomy (``streamdesk.errors``) lacks."""

from __future__ import annotations

from redis.exceptions import RedisError

from streamdesk.errors import REDIS_TEMPORARY

#: Any Redis failure, temporary or not: what a best-effort step (publishing the committed
#: message, recording usage, releasing a lease at shutdown) swallows after counting it.
REDIS_ANY: tuple[type[BaseException], ...] = (RedisError, *REDIS_TEMPORARY)
