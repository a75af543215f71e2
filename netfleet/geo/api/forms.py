"""Multipart/form bodies as nested data: `location.geometry.type=Point` -> {"location": {"geometry": {"type": ...}}}.

controller-api.txt documents flattened dotted fields for every nested object (needed to upload a floor plan image
in the same request), so the geo views turn form bodies into the same nested shape a JSON body has, and the
serializers see one shape only.
"""

from rest_framework import serializers


def nested_form_data(data):
    """A QueryDict (form or multipart body, files included) as nested dicts; JSON bodies pass through."""
    if not hasattr(data, "getlist"):
        return data
    nested, errors = {}, {}
    for key in data:
        if not key:  # an empty field name carries nothing addressable
            continue
        values = data.getlist(key)
        value = values[0] if len(values) == 1 else values
        *parents, leaf = key.split(".")
        target = nested
        for depth, part in enumerate(parents):
            child = target.setdefault(part, {})
            if not isinstance(child, dict):
                errors[".".join(parents[: depth + 1])] = ["Give either an id or its fields, not both."]
                break
            target = child
        else:
            if isinstance(target.get(leaf), dict):
                errors[key] = ["Give either an id or its fields, not both."]
            else:
                target[leaf] = value
    if errors:
        raise serializers.ValidationError(errors)
    return nested
