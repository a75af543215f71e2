"""Serializer base: model validation runs through `Model.clean()`, and organization choices follow the caller."""

import copy

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from netfleet.core.tenancy import get_access


class NetfleetModelSerializer(serializers.ModelSerializer):
    """Runs the model's `full_clean()` on the merged instance so API, admin and shell share one validator,
    and limits a writable `organization` field to organizations where the caller holds the view's write
    permission (another tenant's id is then simply "does not exist")."""

    def get_fields(self):
        fields = self._model_fields()
        # fields are not bound yet here: an implicit field has no source, so match its name too
        organization = next(
            (f for name, f in fields.items() if "organization" in (name, getattr(f, "source", None))), None
        )
        request = self.context.get("request")
        view = self.context.get("view")
        if organization is not None and not organization.read_only and request is not None:
            access = get_access(request)
            if not access.is_superuser:
                permission = getattr(view, "permission_write", None)
                organization.queryset = organization.queryset.filter(pk__in=access.organization_ids(permission))
        return fields

    def _model_fields(self):
        """ModelSerializer's fields, built from the model once per class and copied per instance as DRF copies
        declared fields (building them introspects the model on every request: ~1 ms for a device). They depend
        only on the class; per-request narrowing (querysets by access) happens on the copies."""
        cls = type(self)
        built = cls.__dict__.get("_built_model_fields")
        if built is None:
            built = super().get_fields()
            cls._built_model_fields = built
        return copy.deepcopy(built)

    def validate(self, attrs):
        attrs = super().validate(attrs)
        model = self.Meta.model
        # validate a copy: the instance itself must keep its stored values until the service saves it
        instance = copy.copy(self.instance) if self.instance is not None else model()
        concrete = {f.name for f in model._meta.concrete_fields}
        for name, value in attrs.items():
            if name in concrete:
                setattr(instance, name, value)
        # On create, fields the view fills in later (owner, organization from the URL) are not checked yet.
        not_given = [name for name in concrete if name not in attrs] if self.instance is None else None
        try:
            # uniqueness is enforced by DRF's validators and the database (-> 409), not twice here
            instance.full_clean(exclude=not_given, validate_unique=False, validate_constraints=False)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(serializers.as_serializer_error(exc)) from None
        return attrs
