"""Use cases: the one door every page, API call and CLI command goes through.

A use case is a function ``fn(ctx, ...)`` taking a :class:`~quotaflow.services.uow.Context`
(session, principal, now, language) and decorated ``@use_case``: it owns its unit of work
(commit on success, roll back on any error, audit and outbox in the same transaction),
decides authorisation per object with ``ctx.principal.can``, enforces policy on
server-side values, refuses with :mod:`quotaflow.errors` and keeps its SQL in
:mod:`quotaflow.store`. Only :mod:`quotaflow.services.uow` commits or rolls back.
"""
