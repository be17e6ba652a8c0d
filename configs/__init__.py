"""Packaged YAML configs: tasks/, mixtures/, recipes/."""
