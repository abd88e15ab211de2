"""The project's Redis cache backend (digest/redis_cache.py): Django's, one client per pool, atomic incr."""

import pytest
from django.core.cache import cache


def test_incr_counts_up_and_keeps_the_expiry():
    cache.set("hits", 5, 60)
    assert cache.incr("hits") == 6
    assert cache.incr("hits", 10) == 16
    assert cache.get("hits") == 16
    client = cache._cache.get_client(write=True)
    assert 0 < client.ttl(cache.make_key("hits")) <= 60


def test_incr_of_a_missing_key_raises_and_creates_nothing():
    with pytest.raises(ValueError):
        cache.incr("never-set")
    assert cache.get("never-set") is None


def test_decr_goes_through_the_same_path():
    cache.set("stock", 3, 60)
    assert cache.decr("stock") == 2


def test_one_client_serves_every_call():
    assert cache._cache.get_client() is cache._cache.get_client(write=True)
    cache.set("a", 1, 60)
    assert cache.get("a") == 1 and cache.add("a", 2, 60) is False
