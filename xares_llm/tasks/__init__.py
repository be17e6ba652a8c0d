"""Tasks and mixtures: the config schema, targets and the reference's filter, the catalog, the scaffold."""
