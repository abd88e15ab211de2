"""Django's Redis cache backend, keeping one redis-py client per connection pool.

django.core.cache.backends.redis builds a new ``redis.Redis`` for every cache call; in
redis-py 8 that constructor fills a table of ~170 response callbacks (~0.1 ms of CPU),
more than the round trip it is for. A signup makes four to six cache calls (rate limits,
topics), so the web tier spent more time making clients than talking to Redis.
A ``redis.Redis`` holds no connection of its own (the pool does, and the pool
reconnects after a fork), and is thread-safe, so one per pool per process is enough.
"""

from django.core.cache.backends.redis import RedisCache, RedisCacheClient


class PooledRedisCacheClient(RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(pool)
        if client is None:
            client = self._clients[pool] = self._client(connection_pool=pool)
        return client


class PooledRedisCache(RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = PooledRedisCacheClient
