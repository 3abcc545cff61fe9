"""Delta Sharing routes, mounted under /delta-sharing/ by the composition root. The protocol's
paths have no trailing slash; the profile's endpoint is this prefix."""

from django.urls import path

from licensing.api import views_delta_sharing as views

share = "shares/<str:share>"
table = share + "/schemas/<str:schema>/tables/<str:table>"

urlpatterns = [
    path("shares", views.list_shares, name="delta-sharing-shares"),
    path(share, views.get_share, name="delta-sharing-share"),
    path(share + "/schemas", views.list_schemas, name="delta-sharing-schemas"),
    path(share + "/schemas/<str:schema>/tables", views.list_tables, name="delta-sharing-tables"),
    path(share + "/all-tables", views.list_all_tables, name="delta-sharing-all-tables"),
    path(table + "/version", views.table_version, name="delta-sharing-table-version"),
    path(table + "/metadata", views.table_metadata, name="delta-sharing-table-metadata"),
    path(table + "/query", views.query_table, name="delta-sharing-table-query"),
]
