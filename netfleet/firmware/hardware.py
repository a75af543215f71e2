"""The registry of firmware image types: which image file (board/target identifier) fits which device models.

A type is the name of an image as its build system produces it (OpenWrt: `<target>-<subtarget>-<profile>-
squashfs-sysupgrade.bin`); `boards` are the device models it can be flashed on, spelled as the device reports
its model (`Device.model`, e.g. OpenWrt's /tmp/sysinfo/model). Other code adds types with
`register_image_type()`; operators add theirs with NETFLEET_FIRMWARE_CUSTOM_IMAGE_TYPES (read at call time).
"""

from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class ImageType:
    name: str
    label: str
    boards: tuple[str, ...]
    os: str = "openwrt"

    def fits(self, model):
        return bool(model) and model.strip().lower() in {board.lower() for board in self.boards}


_REGISTRY: dict[str, ImageType] = {}


def register_image_type(image_type):
    """Add an image type; a second registration of a name wins."""
    _REGISTRY[image_type.name] = image_type
    return image_type


def image_types():
    """Every known type by name: the registered ones and those of NETFLEET_FIRMWARE_CUSTOM_IMAGE_TYPES."""
    types = dict(_REGISTRY)
    for name, info in (settings.NETFLEET_FIRMWARE_CUSTOM_IMAGE_TYPES or {}).items():
        types[name] = ImageType(
            name=name,
            label=info.get("label", name),
            boards=tuple(info.get("boards", ())),
            os=info.get("os", "openwrt"),
        )
    return types


def get_image_type(name):
    return image_types().get(name)


def types_for_model(model):
    """Names of the image types that fit a device model."""
    return [image_type.name for image_type in image_types().values() if image_type.fits(model)]


# OpenWrt sysupgrade images of common boards (the model strings are what OpenWrt reports in /tmp/sysinfo/model).
for _name, _label, _boards in (
    (
        "ath79-generic-tplink_archer-c7-v2-squashfs-sysupgrade.bin",
        "TP-Link Archer C7 v2/v3 (ath79)",
        ("TP-Link Archer C7 v2", "TP-Link Archer C7 v3"),
    ),
    (
        "ath79-generic-tplink_archer-c7-v4-squashfs-sysupgrade.bin",
        "TP-Link Archer C7 v4 (ath79)",
        ("TP-Link Archer C7 v4",),
    ),
    (
        "ath79-generic-tplink_archer-c7-v5-squashfs-sysupgrade.bin",
        "TP-Link Archer C7 v5 (ath79)",
        ("TP-Link Archer C7 v5",),
    ),
    ("ath79-generic-tplink_cpe210-v2-squashfs-sysupgrade.bin", "TP-Link CPE210 v2 (ath79)", ("TP-LINK CPE210 v2",)),
    ("ath79-generic-tplink_cpe210-v3-squashfs-sysupgrade.bin", "TP-Link CPE210 v3 (ath79)", ("TP-LINK CPE210 v3",)),
    ("ath79-generic-tplink_cpe510-v3-squashfs-sysupgrade.bin", "TP-Link CPE510 v3 (ath79)", ("TP-LINK CPE510 v3",)),
    (
        "ath79-generic-tplink_tl-wdr4300-v1-squashfs-sysupgrade.bin",
        "TP-Link TL-WDR4300 v1 (ath79)",
        ("TP-Link TL-WDR4300 v1",),
    ),
    (
        "ath79-generic-ubnt_unifiac-mesh-squashfs-sysupgrade.bin",
        "Ubiquiti UniFi AC Mesh / Lite (ath79)",
        ("Ubiquiti UniFi AC-Mesh", "Ubiquiti UniFi-AC-LITE/MESH"),
    ),
    (
        "ath79-generic-ubnt_nanostation-m-xw-squashfs-sysupgrade.bin",
        "Ubiquiti Nanostation M XW (ath79)",
        ("Ubiquiti Nanostation M (XW)",),
    ),
    (
        "ramips-mt76x8-glinet_gl-mt300n-v2-squashfs-sysupgrade.bin",
        "GL.iNet GL-MT300N v2 (ramips)",
        ("GL-MT300N-V2", "GL.iNet GL-MT300N-V2"),
    ),
    (
        "ramips-mt76x8-tplink_tl-wr902ac-v3-squashfs-sysupgrade.bin",
        "TP-Link TL-WR902AC v3 (ramips)",
        ("TP-Link TL-WR902AC v3",),
    ),
    (
        "ramips-mt7621-ubnt_edgerouter-x-squashfs-sysupgrade.bin",
        "Ubiquiti EdgeRouter X (ramips)",
        ("Ubiquiti EdgeRouter X",),
    ),
    (
        "mvebu-cortexa9-linksys_wrt3200acm-squashfs-sysupgrade.bin",
        "Linksys WRT3200ACM (mvebu)",
        ("Linksys WRT3200ACM",),
    ),
    (
        "mvebu-cortexa9-linksys_wrt1900acs-squashfs-sysupgrade.bin",
        "Linksys WRT1900ACS (mvebu)",
        ("Linksys WRT1900ACS",),
    ),
    (
        "bcm27xx-bcm2710-rpi-3-ext4-sysupgrade.img.gz",
        "Raspberry Pi 3 Model B (bcm27xx)",
        ("Raspberry Pi 3 Model B Rev 1.2",),
    ),
    (
        "bcm27xx-bcm2711-rpi-4-ext4-sysupgrade.img.gz",
        "Raspberry Pi 4 Model B (bcm27xx)",
        ("Raspberry Pi 4 Model B Rev 1.1", "Raspberry Pi 4 Model B Rev 1.2", "Raspberry Pi 4 Model B Rev 1.4"),
    ),
    (
        "x86-64-generic-squashfs-combined.img.gz",
        "x86-64 (PC Engines APU2, virtual machines)",
        ("PC Engines APU2", "QEMU Standard PC (i440FX + PIIX, 1996)"),
    ),
):
    register_image_type(ImageType(name=_name, label=_label, boards=_boards))
