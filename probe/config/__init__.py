"""Validated, frozen configuration.

Nothing is imported here, so that importing one config module (the model, a
check parser) never drags in the loaders and the modules they import:
``probe.config.load.load_config`` and ``probe.config.catalog.load_catalog``
are the ways in, ``probe.config.model`` holds what they return.
"""
