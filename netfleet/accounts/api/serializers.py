from rest_framework import serializers

from netfleet.core.api.serializers import NetfleetModelSerializer

from ..models import Organization, Site


class SiteSerializer(NetfleetModelSerializer):
    organization_id = serializers.PrimaryKeyRelatedField(
        source="organization", queryset=Organization.objects.filter(is_active=True)
    )

    class Meta:
        model = Site
        fields = ("id", "organization_id", "name", "slug", "description", "created", "modified")
        read_only_fields = ("created", "modified")

    def get_fields(self):
        fields = super().get_fields()
        if self.instance is not None and not isinstance(self.instance, list | tuple):
            fields["organization_id"].read_only = True  # a site never moves between organizations
        return fields
