"""Certificate authorities and certificates.

The certificate (PEM) is the source of truth: subject fields, validity, serial number, key type and digest are
stored alongside it, read back from the PEM, so they can be listed and filtered. Private keys are encrypted at rest.
"""

from django.core.exceptions import ValidationError
from django.db import models

from netfleet.core.fields import EncryptedTextField
from netfleet.core.models import ShareableModel

from .choices import KEY_LENGTHS, Digest, KeyType


class X509(ShareableModel):
    """What CAs and certificates share: subject, key parameters, validity, serial, PEM certificate and key."""

    name = models.CharField(max_length=64)
    notes = models.TextField(blank=True)
    key_type = models.CharField(max_length=8, choices=KeyType.choices, default=KeyType.RSA)
    key_length = models.PositiveIntegerField(
        default=2048, help_text="RSA modulus bits (2048, 4096) or EC curve (256, 384)"
    )
    digest = models.CharField(max_length=8, choices=Digest.choices, default=Digest.SHA256)
    validity_start = models.DateTimeField(null=True, blank=True)
    validity_end = models.DateTimeField(null=True, blank=True)
    country_code = models.CharField(max_length=2, blank=True)
    state = models.CharField(max_length=64, blank=True)
    city = models.CharField(max_length=64, blank=True)
    organization_name = models.CharField(max_length=64, blank=True)
    organizational_unit_name = models.CharField(max_length=64, blank=True)
    email = models.EmailField(blank=True)
    common_name = models.CharField(max_length=64, blank=True, db_index=True)
    extensions = models.JSONField(
        default=list, blank=True, help_text='Extra extensions: [{"name", "critical", "value"}]'
    )
    serial_number = models.CharField(max_length=48, blank=True, help_text="Decimal; random when empty")
    certificate = models.TextField(blank=True, help_text="PEM")
    private_key = EncryptedTextField(blank=True, help_text="PEM, encrypted at rest")

    class Meta:
        abstract = True

    def __str__(self):
        return self.name

    def clean(self):
        super().clean()
        if self.country_code and not (len(self.country_code) == 2 and self.country_code.isalpha()):
            raise ValidationError({"country_code": "Must be a two-letter country code."})
        # generated keys come in these sizes; an imported key is whatever its certificate says
        if not self.certificate and self.key_length not in KEY_LENGTHS.get(self.key_type, ()):
            allowed = ", ".join(str(length) for length in KEY_LENGTHS.get(self.key_type, ()))
            raise ValidationError({"key_length": f"Must be one of {allowed} for {self.key_type} keys."})
        if self.serial_number and not (self.serial_number.isdigit() and int(self.serial_number) > 0):
            raise ValidationError({"serial_number": "Must be a positive decimal integer."})
        if self.serial_number and int(self.serial_number).bit_length() > 159:
            raise ValidationError({"serial_number": "Must be less than 2^159."})
        if self.validity_start and self.validity_end and self.validity_end <= self.validity_start:
            raise ValidationError({"validity_end": "Must be after validity_start."})
        if not isinstance(self.extensions, list) or not all(
            isinstance(item, dict) and isinstance(item.get("name"), str) for item in self.extensions
        ):
            raise ValidationError({"extensions": 'Must be a list of {"name", "critical", "value"} objects.'})


class Ca(X509):
    """A certificate authority: signs certificates and their revocation list."""

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="cas", null=True, blank=True
    )

    class Meta:
        ordering = ("name",)
        verbose_name = "CA"


class Cert(X509):
    """A certificate issued by a CA (imported or generated); may be revoked."""

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="certs", null=True, blank=True
    )
    ca = models.ForeignKey(Ca, on_delete=models.PROTECT, related_name="certs")
    revoked = models.BooleanField(default=False, db_index=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("name",)
        constraints = [models.UniqueConstraint(fields=("ca", "serial_number"), name="pki_cert_ca_serial")]

    def clean(self):
        super().clean()
        if self.ca_id and self.ca.organization_id not in (None, self.organization_id):
            raise ValidationError({"ca": "This CA belongs to another organization."})
