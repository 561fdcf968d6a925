"""What pages (web/) and the API (api/) share at the HTTP edge, so neither sits on the other.

- :mod:`quotaflow.http.guard`: the one request hook that asks ``Principal.can``;
- :mod:`quotaflow.http.context`: the use-case :class:`~quotaflow.services.uow.Context`
  of the current request (session, principal, now, language, address);
- :mod:`quotaflow.http.errors`: the API's one error shape.

web/ and api/ import this package and services/, never store/.
"""
