"""Extension points for apps built on top of the controller (VPN, ...). The controller imports none of them:
each app appends its functions here in its AppConfig.ready()."""

# fn(config) -> dict: per-device variables of a config (e.g. a VPN client's address and certificate); they
# replace the templates' default values, and organization, group and device variables can still override them.
CONTEXT_PROVIDERS = []

# fn(config, templates, new): called before a config is re-rendered after a change, with its templates in order,
# so what depends on them (VPN clients: certificates, key pairs, tunnel addresses) is created or released first.
# `new`: the config was created in this transaction (nothing of it exists to release).
TEMPLATES_CHANGED = []

# fn(config): called before a device (and its config) is deleted.
CONFIG_RELEASED = []

# fn(device): called once a new device and its config exist, in the creating transaction, wherever the device
# was created (API, agent registration, shell), e.g. to attach credentials that apply to every new device.
DEVICE_CREATED = []

# fn(config_ids): called after configs were re-rendered and became `modified` (their output changed), e.g. to
# push the new configuration to the devices. Runs in the changing transaction: defer real work to on_commit.
CONFIGS_MODIFIED = []


def extra_context(config):
    context = {}
    for provider in CONTEXT_PROVIDERS:
        context.update(provider(config))
    return context


# Extra writable fields of the template API, contributed by other apps (e.g. `vpn`). Each entry has:
#   name; make_field(serializer) -> a DRF field; to_representation(template) -> value;
#   save(template, value) -> called after the template itself was saved, in the same transaction.
TEMPLATE_FIELDS = []
