"""The organisation's governed writes, one layer above the audit trail.

Teams, memberships and service accounts are stored by `portal` (models, exceptions and token
authentication: the bottom layer, which the audit trail itself reads). Changing who may approve
is governed, so every write to them appends an audit event and therefore sits above `audit`:
the services here, the Django admin on those models, the directory sign-in that keeps
memberships in step with groups, the password check of an electronic signature (which may sign
in through the directory) and the demo organisation. `registry` and `releases` may use them;
`portal` and `audit` never do.
"""
