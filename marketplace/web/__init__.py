"""The web portal: server-rendered pages (Django templates, htmx) over the same services as the
API. Views here parse forms, call one service and render; the rules live in the services."""
