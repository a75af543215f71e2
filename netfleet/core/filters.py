import django_filters
from django_filters.rest_framework import DjangoFilterBackend

from netfleet.core.api.exceptions import QueryValidationError


class NetfleetFilterSet(django_filters.FilterSet):
    """Base filterset: `search` (and its synonym `q`) call the subclass's `apply_search()`."""

    search = django_filters.CharFilter(method="apply_search", label="Search")
    q = django_filters.CharFilter(method="apply_search", label="Search")

    def apply_search(self, queryset, name, value):
        return queryset


class NetfleetFilterBackend(DjangoFilterBackend):
    """A bad filter value is a 422 naming the query parameter, like any other validation error."""

    def filter_queryset(self, request, queryset, view):
        filterset_class = self.get_filterset_class(view, queryset)
        if filterset_class is not None and request.query_params.keys().isdisjoint(filterset_class.base_filters):
            # no filter asked for: skip building the filterset (it deep-copies every filter on each request)
            return queryset
        filterset = self.get_filterset(request, queryset, view)
        if filterset is None:
            return queryset
        if not filterset.is_valid() and self.raise_exception:
            raise QueryValidationError(filterset.errors)
        return filterset.qs
