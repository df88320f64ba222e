"""Who may do what: users and their roles and scopes, passwords, API
tokens, share links, the second factor (docs/users.md).

The checks live here so that `etrack users ...` and the web's Users page
accept and refuse exactly the same things; storage is etrack.store.users,
the request side (sessions, the scope of each request) etrack.web.auth.
"""
