"""Sessions read from the cache and written through to the database (Django's ``cached_db``),
which keep working when the cache does not answer.

Django's backend already logs a cache that fails while a session is saved; here loading (after a
read from the database) and deleting do the same, so with Redis stopped every page still signs its
visitor in from the database instead of answering 500. A session deleted while the cache was away
(a sign-out) is gone from the database; were the cache to come back holding it (Redis restarted
from its snapshot), it would last there until its expiry: the failure is logged as an error.
"""

from __future__ import annotations

import logging
from typing import Any, cast

from django.contrib.sessions.backends.cached_db import SessionStore as CachedDBStore
from django.core.cache.backends.base import BaseCache

logger = logging.getLogger("django.contrib.sessions")


class SessionStore(CachedDBStore):
    # Set by Django's __init__; django-stubs leaves both out.
    _cache: BaseCache

    def _row(self) -> Any:
        return cast(Any, super())._get_session_from_db()

    def load(self) -> dict[str, Any]:
        try:
            data = self._cache.get(self.cache_key)
        except Exception:
            logger.warning("The session cache did not answer; reading the session from the database", exc_info=True)
            data = None
        if data is not None:
            return data
        row = self._row()
        if row is None:
            return {}
        data = self.decode(row.session_data)
        try:
            self._cache.set(self.cache_key, data, self.get_expiry_age(expiry=row.expire_date))
        except Exception:
            logger.warning("The session cache did not store a session read from the database", exc_info=True)
        return data

    def exists(self, session_key: str) -> bool:
        try:
            if session_key and (self.cache_key_prefix + session_key) in self._cache:
                return True
        except Exception:
            logger.warning("The session cache did not answer; asking the database", exc_info=True)
        return super(CachedDBStore, self).exists(session_key)

    def delete(self, session_key: str | None = None) -> None:
        super(CachedDBStore, self).delete(session_key)
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
        try:
            self._cache.delete(self.cache_key_prefix + session_key)
        except Exception:
            logger.error("The session cache did not delete an ended session", exc_info=True)
