from django.db import models


class KeyType(models.TextChoices):
    RSA = "rsa", "RSA"
    EC = "ec", "Elliptic curve"


class Digest(models.TextChoices):
    SHA256 = "sha256", "SHA-256"
    SHA384 = "sha384", "SHA-384"
    SHA512 = "sha512", "SHA-512"


# RSA modulus sizes and EC curve sizes (P-256, P-384) that can be generated
KEY_LENGTHS = {KeyType.RSA: (2048, 4096), KeyType.EC: (256, 384)}
