"""Alert rules and their delivery (docs/alerts.md).

`rules.py` checks a rule's fields; `payload.py` turns an event into the
webhook's JSON body and the pt-BR e-mail; `signing.py` signs a body with the
rule's secret (HMAC-SHA256); `webhook.py` and `mail.py` send one alert;
`send.py` picks the channel and says whether an attempt was delivered.

What gets queued, once per (rule, event), and the retries are jobs
(etrack.jobs.alerts); the rules are stored by etrack.store.alerts. This
package sits beside events and never imports it: events are read as the
stored rows of etrack.store.events.
"""
