"""Pagination: `page` + `page_size` (`per_page` is a synonym) everywhere, in one of two renderings.

`ResultsPagination` answers {count, next, previous, results} (the OpenWISP-style surfaces);
`ItemsPagination` answers {items, total, page, per_page} (the platform surface). A view picks one with
`pagination_class`, normally by inheriting the base viewset of its surface.
"""

from collections import OrderedDict

from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.core.paginator import InvalidPage
from django.db import connections
from rest_framework import exceptions
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response

from netfleet.core.api.exceptions import QueryValidationError

PAGE_SIZE_PARAMS = ("page_size", "per_page")


class ResultsPagination(PageNumberPagination):
    page_query_param = "page"
    page_size_query_param = "page_size"

    @property
    def max_page_size(self):
        return settings.NETFLEET_MAX_PAGE_SIZE

    def get_page_size(self, request):
        for name in PAGE_SIZE_PARAMS:
            raw = request.query_params.get(name)
            if raw is None:
                continue
            try:
                value = int(raw)
            except ValueError:
                value = 0
            if not 1 <= value <= self.max_page_size:
                raise QueryValidationError(
                    {name: [f"must be an integer between 1 and {self.max_page_size}"]}, code="invalid"
                )
            return value
        return settings.NETFLEET_PAGE_SIZE

    def paginate_queryset(self, queryset, request, view=None):
        page_size = self.get_page_size(request)
        raw_page = request.query_params.get(self.page_query_param, "1")
        try:
            page_number = int(raw_page)
        except ValueError:
            raise QueryValidationError({"page": ["must be a positive integer"]}, code="invalid") from None
        if page_number < 1:
            raise QueryValidationError({"page": ["must be a positive integer"]}, code="invalid")
        paginator = self.django_paginator_class(queryset, page_size)
        try:
            self.page = paginator.page(page_number)  # page 1 of an empty list is valid
        except InvalidPage:
            raise exceptions.NotFound(f"Page {page_number} is out of range") from None
        self.page_size_value, self.request = page_size, request
        return list(self.page.object_list)  # (iterating the Page itself indexes it item by item)

    def get_paginated_response(self, data):
        return Response(
            OrderedDict(
                count=self.page.paginator.count,
                next=self.get_next_link(),
                previous=self.get_previous_link(),
                results=data,
            )
        )


class ItemsPagination(ResultsPagination):
    def get_paginated_response(self, data):
        return Response(
            OrderedDict(
                items=data, total=self.page.paginator.count, page=self.page.number, per_page=self.page_size_value
            )
        )

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["items", "total", "page", "per_page"],
            "properties": {
                "items": schema,
                "total": {"type": "integer"},
                "page": {"type": "integer"},
                "per_page": {"type": "integer"},
            },
        }


class CountedRows:
    """A list's rows, paginated by their ids: `ids` (a `values_list("pk")` queryset, filtered and ordered) is
    sliced into a page, and `fetch(page)` returns the page's rows in its order; the total counts the unordered
    ids. Compiling one-column queries costs a fraction of compiling the listed columns and joins (and the ORM's
    count builds an aggregation, which costs more than the count)."""

    def __init__(self, ids, fetch):
        self.ids, self.fetch = ids, fetch

    def count(self):
        try:
            sql, params = self.ids.order_by().query.sql_with_params()
        except EmptyResultSet:  # a condition the ORM knows matches nothing
            return 0
        with connections[self.ids.db].cursor() as cursor:
            cursor.execute(f"SELECT COUNT(*) FROM ({sql}) counted", params)  # noqa: S608 - the ORM's SQL
            return cursor.fetchone()[0]

    def __len__(self):
        return self.count()

    def __getitem__(self, index):
        return self.fetch(self.ids[index])
