"""Django's Redis cache backend, keeping one redis-py client per connection pool,
with an incr that is one atomic round trip.

django.core.cache.backends.redis builds a new ``redis.Redis`` for every cache call; in
redis-py 8 that constructor fills a table of ~170 response callbacks (~0.1 ms of CPU),
more than the round trip it is for. A signup makes four to six cache calls (rate limits,
topics), so the web tier spent more time making clients than talking to Redis.
A ``redis.Redis`` holds no connection of its own (the pool does, and the pool
reconnects after a fork), and is thread-safe, so one per pool per process is enough.

Django's incr is EXISTS then INCR: two round trips, and a key that expires in between
comes back without a TTL. django-ratelimit calls it on every counted request.
"""

from django.core.cache.backends.redis import RedisCache, RedisCacheClient


# INCRBY only if the key exists (nil otherwise), as Django's incr requires.
INCR_IF_EXISTS = "if redis.call('exists', KEYS[1]) == 1 then return redis.call('incrby', KEYS[1], ARGV[1]) end return false"


class PooledRedisCacheClient(RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}
        self._incr_scripts = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(pool)
        if client is None:
            client = self._clients[pool] = self._client(connection_pool=pool)
        return client

    def incr(self, key, delta):
        client = self.get_client(key, write=True)
        script = self._incr_scripts.get(client)
        if script is None:
            script = self._incr_scripts[client] = client.register_script(INCR_IF_EXISTS)
        value = script(keys=[key], args=[delta])
        if value is None:
            raise ValueError("Key '%s' not found." % key)
        return value


class PooledRedisCache(RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = PooledRedisCacheClient
